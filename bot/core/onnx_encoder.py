"""The fast query encoder: the bundled model exported to ONNX and run with onnxruntime + ``tokenizers``.

The export happens once, on first use, with sentence-transformers' own helpers
(``SentenceTransformer(path, backend="onnx")`` exports through optimum, and
``sentence_transformers.backend.export_dynamic_quantized_onnx_model`` quantizes it to int8). Only the
export imports torch; loading a cached export imports onnxruntime, ``tokenizers`` and numpy, nothing else.

Cache layout (``index/onnx/`` by default)::

    .export.lock                         fcntl lock: one process exports, the others wait and reuse
    source-hashes.json                   content hash of each model folder, memoized by file size + mtime
    <model>-<kind>-<key>/                one finished export, renamed into place whole
        model.onnx                       the graph (fp32, or int8 dynamically quantized)
        tokenizer.json                   copied from the model folder
        export.json                      key, sha256 of model.onnx, dimension, max length, versions

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
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.embedding import ResolvedModel, normalize_rows, offline_hub
from bot.core.errors import EncoderUnavailableError
from bot.core.files import atomic_write_text, exclusive_lock, file_sha256, fsync_dir, fsync_file, package_versions

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1
DEFAULT_MAX_LENGTH = 256
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_META = "export.json"
SOURCE_HASHES = "source-hashes.json"
LOCK_FILE = ".export.lock"
VERSIONED_PACKAGES = (
    "sentence-transformers", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "torch", "tokenizers",
)
# Measured on the 2-core EPYC (int8): one short query 0.7 ms on 1 thread, 1.0 ms on 2; a batch of 32
# 85 ms on 1 thread, 49 ms on 2. Batches (builds, busy micro-batches) dominate the cost, so use every core.
MAX_INTRA_OP_THREADS = 4


class OnnxExportError(EncoderUnavailableError):
    """The model could not be exported to ONNX."""


# ---------------------------------------------------------------------------------------------
# The encoder


class OnnxEncoder:
    """Sentence vectors from an ONNX graph: tokenize, run, mean-pool over the attention mask, L2-normalize."""

    def __init__(
        self, model: ResolvedModel, model_bytes: bytes, tokenizer_file: Path, *,
        quantized: bool, dimension: int, max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._model_info = model
        self._kind = "onnx-int8" if quantized else "onnx-fp32"
        self._dimension = dimension
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()  # padding is done per batch, to the longest text in it
        self._tokenizer.enable_truncation(max_length)
        self._session = ort.InferenceSession(model_bytes, _session_options(ort), providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self._session.get_inputs()}

    @classmethod
    def load_or_export(cls, model: ResolvedModel, cache_dir: Path, *, quantize: bool) -> OnnxEncoder:
        """Load the cached export for this model and setting, exporting it first when missing or corrupt."""
        folder, meta, model_bytes = ensure_export(model, cache_dir, quantize=quantize)
        return cls(
            model, model_bytes, folder / TOKENIZER_FILE, quantized=quantize,
            dimension=int(meta["dimension"]), max_length=int(meta["max_length"]),
        )

    @property
    def model_name(self) -> str:
        return self._model_info.name

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Normalized float32 vectors, one row per text, in the order given."""
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")  # similar lengths share a batch: little padding
        output = np.empty((len(texts), self._dimension), dtype=np.float32)
        batch_size = max(1, batch_size)
        starts = range(0, len(order), batch_size)
        for start in _progress(starts, enabled=progress, total=len(starts)):
            rows = order[start:start + batch_size]
            output[rows] = self._encode_batch([encodings[i] for i in rows])
        return output

    def _encode_batch(self, encodings: Sequence[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        input_ids = np.zeros((len(encodings), width), dtype=np.int64)
        attention = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            input_ids[row, :len(encoding.ids)] = encoding.ids
            attention[row, :len(encoding.ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self._session.run(None, feeds)[0]
        return normalize_rows(mean_pool(hidden, attention))


def mean_pool(hidden: np.ndarray, attention: np.ndarray) -> np.ndarray:
    """The average token vector, counting only real tokens (not padding)."""
    mask = attention[:, :, None].astype(np.float32)
    summed = (hidden.astype(np.float32) * mask).sum(axis=1)
    return summed / np.clip(mask.sum(axis=1), 1e-9, None)


def intra_op_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_INTRA_OP_THREADS))


def _session_options(ort: Any) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads spinning after each run steal the event loop's core; measured no slower without.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _progress(items: range, *, enabled: bool, total: int) -> Iterator[int]:
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc="encoding", unit="batch")


# ---------------------------------------------------------------------------------------------
# The cached export


def ensure_export(model: ResolvedModel, cache_dir: Path, *, quantize: bool) -> tuple[Path, dict[str, Any], bytes]:
    """The export folder, its metadata and the verified graph bytes; exports under a lock when needed."""
    if not model.is_local:
        raise OnnxExportError(f"{model.location} is not a local model folder (nothing is downloaded at run time)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = export_key(model, cache_dir, quantize=quantize)
    folder = cache_dir / export_folder_name(model, quantize=quantize, key=key)
    found = read_valid_export(folder, key)
    if found is not None:
        return folder, *found
    with export_lock(cache_dir):
        found = read_valid_export(folder, key)  # another process may have exported while we waited
        if found is None:
            export_model(model, folder, key=key, quantize=quantize)
            found = read_valid_export(folder, key)
        if found is None:
            raise OnnxExportError(f"the export in {folder} does not verify right after it was written")
    return folder, *found


def export_folder_name(model: ResolvedModel, *, quantize: bool, key: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model.name.removeprefix("bundled:")).strip("-").lower() or "model"
    return f"{slug}-{'int8' if quantize else 'fp32'}-{key[:16]}"


def export_key(model: ResolvedModel, cache_dir: Path, *, quantize: bool) -> str:
    """A hash of everything the exported graph depends on."""
    parts = {
        "format": EXPORT_FORMAT,
        "model": model_content_hash(Path(model.location), cache_dir / SOURCE_HASHES),
        "quantize": quantization_target() if quantize else None,
        "versions": library_versions(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str]:
    return package_versions(VERSIONED_PACKAGES)


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
    memo = _read_json(memo_file) or {}
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
        _atomic_write_json(memo_file, memo)
    return content_hash


def read_valid_export(folder: Path, key: str) -> tuple[dict[str, Any], bytes] | None:
    """The export's metadata and graph bytes if they are complete and match ``key``; None otherwise."""
    meta = _read_json(folder / EXPORT_META)
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


def export_model(model: ResolvedModel, folder: Path, *, key: str, quantize: bool) -> None:
    """Export into a staging folder beside ``folder``, then rename it into place (call under the lock)."""
    staging = folder.with_name(f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        meta = _export_into(model, staging, quantize=quantize)
        meta |= {"key": key, "format": EXPORT_FORMAT, "model": model.name, "versions": library_versions()}
        _atomic_write_json(staging / EXPORT_META, meta)
        fsync_dir(staging)
        _replace_folder(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("exported %s to ONNX (%s) in %s", model.name, "int8" if quantize else "fp32", folder)


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """The exporters' tracer warnings and advice are for model authors, not for someone asking a question."""
    loggers = [logging.getLogger(name) for name in ("sentence_transformers", "transformers", "optimum")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _export_into(model: ResolvedModel, staging: Path, *, quantize: bool) -> dict[str, Any]:
    """Run sentence-transformers' exporters; leave model.onnx and tokenizer.json in ``staging``."""
    with _quiet_exporters():
        return _run_exporters(model, staging, quantize=quantize)


def _run_exporters(model: ResolvedModel, staging: Path, *, quantize: bool) -> dict[str, Any]:
    offline_hub()
    log.info("exporting %s to ONNX (first use; imports torch once)", model.name)
    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model
    except ImportError as exc:
        raise OnnxExportError(f"the ONNX export needs sentence-transformers with optimum-onnx: {exc}") from exc
    work = staging / "work"
    st_model = SentenceTransformer(model.location, backend="onnx", device="cpu", model_kwargs={"export": True})
    st_model.save(str(work))
    graph = work / "onnx" / MODEL_FILE
    target = None
    if quantize:
        target = quantization_target()
        export_dynamic_quantized_onnx_model(st_model, target, str(work))
        graph = next((work / "onnx").glob(f"model_*{target}.onnx"))
    os.replace(graph, staging / MODEL_FILE)
    shutil.copyfile(Path(model.location) / TOKENIZER_FILE, staging / TOKENIZER_FILE)
    shutil.rmtree(work)
    for name in (MODEL_FILE, TOKENIZER_FILE):
        fsync_file(staging / name)
    return {
        "onnx_sha256": file_sha256(staging / MODEL_FILE),
        "dimension": int(st_model.get_embedding_dimension()),
        "max_length": int(st_model.max_seq_length or DEFAULT_MAX_LENGTH),
        "quantization": target,
    }


def _replace_folder(staging: Path, folder: Path) -> None:
    """Put ``staging`` at ``folder``; a stale (corrupt) folder there is moved aside first, then removed."""
    if folder.exists():
        stale = folder.with_name(f".stale-{folder.name}-{uuid.uuid4().hex[:8]}")
        os.rename(folder, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(staging, folder)
    fsync_dir(folder.parent)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _atomic_write_json(path: Path, value: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True))
