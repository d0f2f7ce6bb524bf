"""The saved index: a folder per snapshot with a manifest, and a ``CURRENT`` pointer.

Layout of ``index/``::

    CURRENT                      name of the active snapshot folder (replaced atomically)
    snap-<kb version>-<nonce>/
        manifest.json            format, model, encoder, dimension, count, hashes, versions
        index.faiss              the FAISS index (faiss.write_index; no pickle)
        vectors.npy              the row-aligned vectors (np.save, allow_pickle=False)
        passages.jsonl           the passage metadata, one JSON object per row
        knowledge.json           topics, examples and scope, to rebuild the knowledge base

A snapshot is written into a temporary folder and renamed into place, then ``CURRENT`` is replaced
with ``os.replace``: a crash at any point leaves the previous snapshot in service, never half an index.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.embedding import Encoder
from bot.core.files import atomic_write_text, exclusive_lock, file_sha256, fsync_dir, package_versions, write_durably
from bot.core.knowledge import KnowledgeBase
from bot.core.models import BuildReport, Passage, Source, Topic
from bot.core.vector_index import VectorIndex

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
FAISS_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
PASSAGES_FILE = "passages.jsonl"
KNOWLEDGE_FILE = "knowledge.json"
DATA_FILES = (FAISS_FILE, VECTORS_FILE, PASSAGES_FILE, KNOWLEDGE_FILE)
KEEP_SNAPSHOTS = 2


class IndexUnusableError(Exception):
    """The saved index cannot serve: missing, corrupt, truncated or built for something else."""


@dataclass(frozen=True)
class StoredIndex:
    knowledge: KnowledgeBase
    vectors: VectorIndex
    ids: tuple[str, ...]
    manifest: dict[str, Any]
    folder: Path

    @property
    def size_bytes(self) -> int:
        return sum((self.folder / name).stat().st_size for name in DATA_FILES if (self.folder / name).exists())


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    return package_versions(("faiss-cpu", "numpy", "sentence-transformers", "onnxruntime", "tokenizers"))


def current_snapshot_name(index_dir: Path) -> str | None:
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name or None


# ---------------------------------------------------------------------------------------------
# Loading


def load_current(index_dir: Path, encoder: Encoder, knowledge: KnowledgeBase | None = None) -> StoredIndex:
    """The active snapshot, checked against the encoder (and the knowledge base, when given)."""
    name = current_snapshot_name(index_dir)
    if name is None:
        raise IndexUnusableError(f"no index in {index_dir}")
    folder = index_dir / name
    manifest = _read_manifest(folder)
    _check_encoder(manifest, encoder)
    if knowledge is not None and manifest.get("kb_hash") != knowledge.version:
        raise IndexUnusableError(f"built for knowledge base {manifest.get('kb_hash')}, not {knowledge.version}")
    _check_files(folder, manifest)
    vectors = _read_vectors(folder, manifest)
    stored_knowledge = knowledge or _read_knowledge(folder)
    return StoredIndex(stored_knowledge, vectors, tuple(manifest["ids"]), manifest, folder)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexUnusableError(f"unreadable manifest in {folder.name}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnusableError(f"manifest in {folder.name} is not format version {FORMAT_VERSION}")
    expected_types = {
        "model": str, "encoder": str, "dimension": int, "count": int, "ids": list,
        "passage_hashes": dict, "kb_hash": str, "files": dict,
    }
    wrong = [key for key, kind in expected_types.items() if not isinstance(manifest.get(key), kind)]
    if wrong:
        raise IndexUnusableError(f"manifest in {folder.name} lacks or mistypes {', '.join(wrong)}")
    return manifest


def _check_encoder(manifest: dict[str, Any], encoder: Encoder) -> None:
    built_with = (manifest["model"], manifest["encoder"], manifest["dimension"])
    wanted = (encoder.model_name, encoder.kind, encoder.dimension)
    if built_with != wanted:
        raise IndexUnusableError(f"built with {built_with}, the query encoder is {wanted}")


def _check_files(folder: Path, manifest: dict[str, Any]) -> None:
    for name in DATA_FILES:
        path = folder / name
        if not path.is_file():
            raise IndexUnusableError(f"{name} is missing from {folder.name}")
        if file_sha256(path) != manifest["files"].get(name):
            raise IndexUnusableError(f"{name} in {folder.name} does not match its hash (corrupt or truncated)")


def _read_vectors(folder: Path, manifest: dict[str, Any]) -> VectorIndex:
    import faiss

    try:
        vectors = np.load(folder / VECTORS_FILE, allow_pickle=False)
        faiss_index = faiss.read_index(str(folder / FAISS_FILE))
    except (OSError, ValueError, RuntimeError) as exc:
        raise IndexUnusableError(f"cannot read the index in {folder.name}: {exc}") from exc
    expected = (manifest["count"], manifest["dimension"])
    if vectors.shape != expected or faiss_index.ntotal != manifest["count"] or faiss_index.d != expected[1]:
        raise IndexUnusableError(f"index in {folder.name} does not have the {expected} shape its manifest states")
    return VectorIndex(faiss_index, vectors.astype(np.float32, copy=False), manifest.get("index_kind", "flat"))


def _read_knowledge(folder: Path) -> KnowledgeBase:
    """Rebuild the knowledge base from a snapshot, for processes that did not build it."""
    try:
        meta = json.loads((folder / KNOWLEDGE_FILE).read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in (folder / PASSAGES_FILE).read_text(encoding="utf-8").splitlines()]
        passages = {row["id"]: _passage_from_row(row) for row in rows}
        topics = {
            t["slug"]: Topic(t["slug"], t["title"], Path(t["file"]), tuple(t["passage_ids"])) for t in meta["topics"]
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexUnusableError(f"cannot read the passages in {folder.name}: {exc}") from exc
    return KnowledgeBase(topics, passages, tuple(meta.get("examples", ())), meta.get("scope", ""))


def _passage_from_row(row: dict[str, Any]) -> Passage:
    return Passage(
        id=row["id"], title=row["title"], text=row["text"], date=dt.date.fromisoformat(row["date"]),
        source=Source(**row["source"]), topic=row["topic"], file=Path(row["file"]),
        tags=tuple(row["tags"]), aliases=tuple(row["aliases"]), supersedes=tuple(row["supersedes"]),
    )


# ---------------------------------------------------------------------------------------------
# Building


def open_or_build(
    knowledge: KnowledgeBase, encoder: Encoder, index_dir: Path, *, force: bool = False
) -> tuple[StoredIndex, BuildReport]:
    """Load the saved index when it matches; otherwise build one, reusing every vector still valid."""
    previous: StoredIndex | None = None
    reason = "forced rebuild" if force else None
    if not force:
        try:
            previous = load_current(index_dir, encoder)
        except IndexUnusableError as exc:
            reason = str(exc)
            if current_snapshot_name(index_dir) is not None:
                log.warning("index unusable, rebuilding: %s", exc)
    if previous is not None and previous.manifest["kb_hash"] == knowledge.version:
        loaded = StoredIndex(knowledge, previous.vectors, previous.ids, previous.manifest, previous.folder)
        return loaded, BuildReport(reused=len(previous.ids))
    return build(knowledge, encoder, index_dir, previous=previous, reason=reason)


def build(
    knowledge: KnowledgeBase,
    encoder: Encoder,
    index_dir: Path,
    *,
    previous: StoredIndex | None = None,
    reason: str | None = None,
) -> tuple[StoredIndex, BuildReport]:
    """Embed what changed, write a new snapshot atomically and make it current."""
    passages = list(knowledge.passages.values())
    hashes = {p.id: text_hash(p.embedded_text) for p in passages}
    old_rows = {pid: row for row, pid in enumerate(previous.ids)} if previous else {}
    old_hashes: dict[str, str] = previous.manifest["passage_hashes"] if previous else {}
    reusable = {p.id for p in passages if p.id in old_rows and old_hashes.get(p.id) == hashes[p.id]}
    to_embed = [p for p in passages if p.id not in reusable]
    vectors = np.zeros((len(passages), encoder.dimension), dtype=np.float32)
    row_of = {p.id: row for row, p in enumerate(passages)}
    if previous is not None:
        for pid in reusable:
            vectors[row_of[pid]] = previous.vectors.vectors[old_rows[pid]]
    if to_embed:
        log.info("embedding %d passage(s) with %s (%s)", len(to_embed), encoder.model_name, encoder.kind)
        fresh = encoder.encode([p.embedded_text for p in to_embed], progress=len(to_embed) >= 64)
        for passage, vector in zip(to_embed, fresh, strict=True):
            vectors[row_of[passage.id]] = vector
    index = VectorIndex.build(vectors)
    report = BuildReport(
        added=tuple(p.id for p in to_embed if p.id not in old_rows),
        changed=tuple(p.id for p in to_embed if p.id in old_rows),
        removed=tuple(pid for pid in old_rows if pid not in row_of),
        reused=len(reusable),
        rebuilt_reason=reason,
    )
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": encoder.model_name,
        "encoder": encoder.kind,
        "dimension": encoder.dimension,
        "count": len(passages),
        "index_kind": index.kind,
        "kb_hash": knowledge.version,
        "ids": [p.id for p in passages],
        "passage_hashes": hashes,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    folder = _write_snapshot(index_dir, knowledge, index, manifest)
    return StoredIndex(knowledge, index, tuple(manifest["ids"]), manifest, folder), report


def build_lock(index_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Serialize builds between processes sharing one ``index/`` (sharded bots)."""
    return exclusive_lock(index_dir / ".build.lock")


def _write_snapshot(index_dir: Path, knowledge: KnowledgeBase, index: VectorIndex, manifest: dict[str, Any]) -> Path:
    import faiss

    with build_lock(index_dir):
        name = f"snap-{manifest['kb_hash']}-{uuid.uuid4().hex[:8]}"
        staging = index_dir / f".tmp-{name}"
        staging.mkdir()
        try:
            faiss.write_index(index.faiss_index, str(staging / FAISS_FILE))
            with (staging / VECTORS_FILE).open("wb") as handle:
                np.save(handle, index.vectors, allow_pickle=False)
            write_durably(staging / PASSAGES_FILE, "".join(
                json.dumps({**p.to_dict(), "file": p.file.name}, ensure_ascii=False) + "\n"
                for p in knowledge.passages.values()
            ))
            write_durably(staging / KNOWLEDGE_FILE, json.dumps(_knowledge_meta(knowledge), ensure_ascii=False))
            manifest["files"] = {name_: file_sha256(staging / name_) for name_ in DATA_FILES}
            write_durably(staging / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
            fsync_dir(staging)
            final = index_dir / name
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        atomic_write_text(index_dir / CURRENT, name + "\n")
        _prune(index_dir, keep=name)
    log.info("index snapshot %s written (%d passages)", name, manifest["count"])
    return final


def _knowledge_meta(knowledge: KnowledgeBase) -> dict[str, Any]:
    return {
        "topics": [
            {"slug": t.slug, "title": t.title, "file": t.file.name, "passage_ids": list(t.passage_ids)}
            for t in knowledge.topics.values()
        ],
        "examples": list(knowledge.examples),
        "scope": knowledge.scope,
    }


def _prune(index_dir: Path, keep: str) -> None:
    """Drop stale staging folders and all but the newest snapshots (other processes may still read one)."""
    snapshots = sorted(
        (p for p in index_dir.glob("snap-*") if p.is_dir() and p.name != keep),
        key=lambda p: p.stat().st_mtime, reverse=True,
    )
    for stale in snapshots[KEEP_SNAPSHOTS - 1:]:
        shutil.rmtree(stale, ignore_errors=True)
    for staging in index_dir.glob(".tmp-snap-*"):
        shutil.rmtree(staging, ignore_errors=True)
