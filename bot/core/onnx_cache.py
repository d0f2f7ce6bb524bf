"""The cache of ONNX exports: where an export lives, the key it must match, and whether it is intact.

Reads files and hashes, nothing heavier than numpy; :mod:`bot.core.onnx_export` makes the exports.

Cache layout (``index/onnx/`` by default)::

    .export.lock                         file lock: one process exports, the others wait and reuse
    source-hashes.json                   content hash of each model folder, memoized by file size + mtime
    <model>-<kind>-<key>/                one finished export, renamed into place whole
        model.onnx                       the graph (fp32, or int8 dynamically quantized)
        tokenizer.json                   copied from the model folder
        export.json                      key, sha256 of model.onnx, dimension, max length, pooling,
                                         lowest cosine to sentence-transformers on the check, versions
        model.optimized.onnx             the graph as onnxruntime optimized it on this machine (written by the
        optimized.json                   first start that needs it): later starts load it without optimizing
    <model>-<kind>-<key>.rejected.json   an export that failed the check, and why
    library-versions.json                the versioned libraries, memoized by the mtimes of sys.path folders

The key covers the model files' content, the quantization choice and the versions of the libraries
that made and run the graph, so an upgrade or a new model re-exports; a ``model.onnx`` whose bytes do
not match the recorded sha256 (truncated, corrupt) is detected and exported again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.embedding import ResolvedModel
from bot.core.files import atomic_write_text, exclusive_lock, file_sha256, fsync_dir, library_versions
from bot.core.onnx_runtime import EXPORT_META, MODEL_FILE, TOKENIZER_FILE

log = logging.getLogger(__name__)

EXPORT_FORMAT = 3  # 2: pooling read from the model's config, vectors checked against sentence-transformers;
# 3: int8 quantizes the fused (O2) graph
SOURCE_HASHES = "source-hashes.json"
VERSIONS_MEMO = "library-versions.json"
LOCK_FILE = ".export.lock"
OPTIMIZED_FILE = "model.optimized.onnx"
OPTIMIZED_META = "optimized.json"


@dataclass(frozen=True)
class CachedExport:
    """A complete, checked export: ``graph`` is the file to load, ``optimized`` when already optimized here."""

    folder: Path
    meta: dict[str, Any]
    graph: Path
    optimized: bool


def export_folder_name(model: ResolvedModel, *, quantize: bool, key: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model.name.removeprefix("bundled:")).strip("-").lower() or "model"
    return f"{slug}-{'int8' if quantize else 'fp32'}-{key[:16]}"


def export_key(model: ResolvedModel, cache_dir: Path, *, quantize: bool) -> str:
    """A hash of everything the exported graph depends on."""
    parts = {
        "format": EXPORT_FORMAT,
        "model": model_content_hash(Path(model.location), cache_dir / SOURCE_HASHES),
        "quantize": quantization_target() if quantize else None,
        "versions": memoized_library_versions(cache_dir / VERSIONS_MEMO),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def quantization_target() -> str:
    """sentence-transformers' dynamic quantization preset that suits this CPU."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    flags = _cpu_flags()
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def model_source_files(folder: Path) -> list[Path]:
    """The model's own files (weights, configs, tokenizer), without any ONNX copies beside them."""
    return sorted(
        path for path in folder.rglob("*")
        if path.is_file() and "onnx" not in path.relative_to(folder).parts and "__pycache__" not in path.parts
    )


def model_content_hash(folder: Path, memo_file: Path) -> str:
    """sha256 over the model files' names and bytes, memoized by (name, size, mtime) so a start skips ~90 MB."""
    files = model_source_files(folder)
    signature = [[p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo = read_json(memo_file) or {}
    entry = memo.get(str(folder))
    if isinstance(entry, dict) and entry.get("signature") == signature:
        return str(entry["hash"])
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(file_sha256(path).encode("ascii"))
    content_hash = digest.hexdigest()
    memo[str(folder)] = {"signature": signature, "hash": content_hash}
    with contextlib.suppress(OSError):
        atomic_write_json(memo_file, memo)
    return content_hash


def read_valid_export(folder: Path, key: str) -> tuple[dict[str, Any], bytes] | None:
    """The export's metadata and graph bytes if they are complete and match ``key``; None otherwise."""
    meta = read_json(folder / EXPORT_META)
    if not meta or meta.get("key") != key or meta.get("format") != EXPORT_FORMAT:
        return None
    try:
        model_bytes = (folder / MODEL_FILE).read_bytes()
        tokenizer_ok = (folder / TOKENIZER_FILE).is_file()
    except OSError:
        return None
    if not tokenizer_ok or hashlib.sha256(model_bytes).hexdigest() != meta.get("onnx_sha256"):
        log.warning("cached ONNX export %s is corrupt or incomplete; exporting it again", folder.name)
        return None
    return meta, model_bytes


def export_lock(cache_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Serialize exports between processes sharing one cache folder."""
    return exclusive_lock(cache_dir / LOCK_FILE)


def rejection_file(folder: Path) -> Path:
    return folder.with_name(f"{folder.name}.rejected.json")


def replace_folder(staging: Path, folder: Path) -> None:
    """Put ``staging`` at ``folder``; a stale (corrupt) folder there is moved aside first, then removed."""
    if folder.exists():
        stale = folder.with_name(f".stale-{folder.name}-{uuid.uuid4().hex[:8]}")
        os.rename(folder, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(staging, folder)
    fsync_dir(folder.parent)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def atomic_write_json(path: Path, value: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------------
# The start-up fast path: find a checked export without reading more than it has to


def find_export(model: ResolvedModel, cache_dir: Path, *, quantize: bool) -> CachedExport | None:
    """The cached export matching ``model`` and the libraries, its optimized graph when that is intact;
    None when there is none or it is incomplete or corrupt (``ensure_export`` then makes it again)."""
    if not model.is_local or not cache_dir.is_dir():
        return None
    key = export_key(model, cache_dir, quantize=quantize)
    folder = cache_dir / export_folder_name(model, quantize=quantize, key=key)
    meta = read_json(folder / EXPORT_META)
    if not meta or meta.get("key") != key or meta.get("format") != EXPORT_FORMAT:
        return None
    if not (folder / TOKENIZER_FILE).is_file():
        return None
    record = read_json(folder / OPTIMIZED_META) or {}
    source_unchanged = _unchanged(folder / MODEL_FILE, record.get("source_stat"))
    if not source_unchanged and not _intact(folder / MODEL_FILE, meta.get("onnx_sha256"), None):
        return None
    made_here = record.get("source_sha256") == meta.get("onnx_sha256") and record.get("machine") == _machine()
    if source_unchanged and made_here and _intact(folder / OPTIMIZED_FILE, record.get("sha256"), record.get("stat")):
        return CachedExport(folder, meta, folder / OPTIMIZED_FILE, optimized=True)
    return CachedExport(folder, meta, folder / MODEL_FILE, optimized=False)  # optimized (and recorded) again


def optimized_staging(folder: Path) -> Path:
    return folder / f".{OPTIMIZED_FILE}.{uuid.uuid4().hex[:8]}.tmp"


def keep_optimized(folder: Path, meta: dict[str, Any], staging: Path) -> None:
    """Put the graph onnxruntime just optimized (at ``staging``) in place, with what it was made from."""
    try:
        digest = file_sha256(staging)
        os.replace(staging, folder / OPTIMIZED_FILE)
        atomic_write_json(folder / OPTIMIZED_META, {
            "source_sha256": meta.get("onnx_sha256"), "source_stat": _stat_signature(folder / MODEL_FILE),
            "machine": _machine(), "sha256": digest, "stat": _stat_signature(folder / OPTIMIZED_FILE),
        })
    except OSError as exc:  # a cache: the next start optimizes again
        log.info("cannot keep the optimized ONNX graph in %s: %s", folder, exc)
        with contextlib.suppress(OSError):
            staging.unlink()


def _intact(path: Path, sha256: object, recorded_stat: object) -> bool:
    """The file's bytes are those hashed: re-hashed unless its size, times and inode are those recorded when
    it was last hashed (as ``make`` and ``rsync`` decide a file is unchanged; any rewrite changes its ctime)."""
    try:
        return _unchanged(path, recorded_stat) or file_sha256(path) == sha256
    except OSError:
        return False


def _unchanged(path: Path, recorded_stat: object) -> bool:
    try:
        return recorded_stat is not None and recorded_stat == _stat_signature(path)
    except OSError:
        return False


def _stat_signature(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def _machine() -> str:
    """What an optimized graph may depend on: the CPU's architecture and features."""
    flags = " ".join(sorted(_cpu_flags()))
    return hashlib.sha256(f"{platform.machine()} {flags}".encode()).hexdigest()[:16]


def memoized_library_versions(memo_file: Path) -> dict[str, str]:
    """``library_versions()``, memoized by the mtimes of the package folders on the import path (an
    install or an upgrade renames a ``*.dist-info`` folder in one, which changes that folder's mtime).
    Only ``site-packages``/``dist-packages`` folders count: the script's own folder or the working
    folder, which differ between processes, would make each start recompute (and rewrite) the memo."""
    signature = []
    for entry in sys.path:
        if entry.rstrip("/\\").endswith(("site-packages", "dist-packages")):
            with contextlib.suppress(OSError):
                signature.append([entry, os.stat(entry).st_mtime_ns])
    memo = read_json(memo_file)
    if memo and memo.get("signature") == signature and isinstance(memo.get("versions"), dict):
        return {str(k): str(v) for k, v in memo["versions"].items()}
    versions = library_versions()
    with contextlib.suppress(OSError):
        atomic_write_json(memo_file, {"signature": signature, "versions": versions})
    return versions
