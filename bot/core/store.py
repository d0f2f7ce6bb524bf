"""The saved index: a folder per snapshot with a manifest, and a ``CURRENT`` pointer.

Layout of ``index/``::

    CURRENT                      name of the active snapshot folder (replaced atomically)
    .build.lock                  held from load to write by whoever opens the store (see below)
    snap-<kb version>-<nonce>/
        manifest.json            format, model, encoder, dimension, count, hashes, versions
        index.faiss              the FAISS index (faiss.write_index; no pickle)
        vectors.npy              the row-aligned vectors (np.save, allow_pickle=False)
        passages.jsonl           the passage metadata, one JSON object per row
        knowledge.json           topics, examples and scope, to rebuild the knowledge base

A snapshot is written into a staging folder, every file fsynced, renamed into place, then ``CURRENT``
is replaced with ``os.replace``: a crash at any point leaves the previous snapshot in service, never
half an index. ``open_or_build`` holds the build lock for the whole load-or-build, so of several
processes starting together one builds and the others wait, then load what it built; under the lock
it also removes staging left by a killed build. (A start that finds ``CURRENT`` naming a snapshot built
for its knowledge base, and nothing left by a killed build, just reads it, as ``load_current`` does.)
Reading (``load_current``, in ``stored_index``) takes no lock, and falls back to the previous snapshot
when the current one cannot serve.
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
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.embedding import Encoder
from bot.core.files import (
    atomic_write_text,
    exclusive_lock,
    file_sha256,
    fsync_dir,
    fsync_file,
    library_versions,
    write_durably,
)
from bot.core.knowledge import KnowledgeBase
from bot.core.manifest import (
    DATA_FILES,
    FAISS_FILE,
    FORMAT_VERSION,
    KNOWLEDGE_FILE,
    MANIFEST,
    PASSAGES_FILE,
    VECTORS_FILE,
    IndexUnusableError,
    Manifest,
)
from bot.core.models import BuildReport
from bot.core.stored_index import (
    CURRENT,
    SNAPSHOT_NAME,
    SnapshotVectors,
    StoredIndex,
    current_snapshot_name,
    first_usable,
    load_current,
    load_vectors,
    snapshot_folders,
)
from bot.core.vector_index import VectorIndex

__all__ = [
    "FORMAT_VERSION", "IndexUnusableError", "Manifest", "StoredIndex", "build_lock", "current_snapshot_name",
    "load_current", "open_or_build", "text_hash",
]

log = logging.getLogger(__name__)

KEEP_SNAPSHOTS = 2
LOCK_FILE = ".build.lock"
STAGING_PREFIX = ".tmp-"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Opening: load or build, under the build lock


def build_lock(index_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Serialize opening and building between processes sharing one ``index/`` (not re-entrant)."""
    return exclusive_lock(
        index_dir / LOCK_FILE, waiting=f"waiting for another process to finish building the index in {index_dir}")


def open_or_build(
    knowledge: KnowledgeBase, encoder: Encoder, index_dir: Path, *, force: bool = False
) -> tuple[StoredIndex, BuildReport]:
    """Load the saved index when it matches; otherwise build one, reusing every vector still valid.

    Holds the build lock throughout: a process that finds another one building waits, then loads
    the snapshot it made instead of embedding everything again.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    current = None
    if not force and not _left_by_a_killed_build(index_dir):
        current = _current_if_built_for(knowledge, encoder, index_dir)
    if current is not None:
        return current, BuildReport(reused=current.manifest.count)
    with build_lock(index_dir):
        _remove_stale_staging(index_dir)
        if force:
            return _build(knowledge, encoder, index_dir, previous=None, reason="forced rebuild")
        try:
            previous = first_usable(index_dir, lambda folder: load_vectors(folder, encoder))
        except IndexUnusableError as exc:
            if (index_dir / CURRENT).exists() or snapshot_folders(index_dir):
                log.warning("index unusable, rebuilding: %s", exc)
            return _build(knowledge, encoder, index_dir, previous=None, reason=str(exc))
        if previous.manifest.kb_hash != knowledge.version:
            return _build(knowledge, encoder, index_dir, previous=previous, reason=None)
        _point_current_at(index_dir, previous.folder.name)
        loaded = StoredIndex(knowledge, previous.vectors, previous.manifest.ids, previous.manifest, previous.folder)
        return loaded, BuildReport(reused=previous.manifest.count)


def _current_if_built_for(knowledge: KnowledgeBase, encoder: Encoder, index_dir: Path) -> StoredIndex | None:
    """The snapshot ``CURRENT`` names, if it serves this knowledge base and encoder as it stands.

    Read without the build lock, as ``load_current`` reads: a snapshot never changes once renamed into
    place. Anything else (no pointer, another version, a damaged snapshot) is left to the locked path,
    which reports it, so nothing is logged here.
    """
    try:
        name = (index_dir / CURRENT).read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not SNAPSHOT_NAME.fullmatch(name):
        return None
    try:
        part = load_vectors(index_dir / name, encoder, knowledge.version)
    except IndexUnusableError:
        return None
    return StoredIndex(knowledge, part.vectors, part.manifest.ids, part.manifest, part.folder)


def _left_by_a_killed_build(index_dir: Path) -> bool:
    try:
        names = os.listdir(index_dir)
    except OSError:
        return False
    return any(name.startswith((f"{STAGING_PREFIX}snap-", f".{CURRENT}.")) for name in names)


def _remove_stale_staging(index_dir: Path) -> None:
    """Remove what a killed build left: staging folders and pointer temporaries (only under the lock)."""
    for staging in index_dir.glob(f"{STAGING_PREFIX}snap-*"):
        log.info("removing %s, left by an interrupted build", staging.name)
        shutil.rmtree(staging, ignore_errors=True)
    for temporary in index_dir.glob(f".{CURRENT}.*.tmp"):
        with contextlib.suppress(OSError):
            temporary.unlink()


def _point_current_at(index_dir: Path, name: str) -> None:
    """Make ``CURRENT`` name ``name`` (after a fallback past a garbled pointer or a damaged snapshot)."""
    with contextlib.suppress(OSError):
        if (index_dir / CURRENT).read_bytes().strip() == name.encode("utf-8"):
            return
    atomic_write_text(index_dir / CURRENT, name + "\n")
    log.info("index pointer %s now names %s", index_dir / CURRENT, name)


# ---------------------------------------------------------------------------------------------
# Building (called under the build lock)


def _build(
    knowledge: KnowledgeBase,
    encoder: Encoder,
    index_dir: Path,
    *,
    previous: SnapshotVectors | None,
    reason: str | None,
) -> tuple[StoredIndex, BuildReport]:
    """Embed what changed, write a new snapshot atomically and make it current."""
    passages = list(knowledge.passages.values())
    hashes = {p.id: text_hash(p.embedded_text) for p in passages}
    old_rows = {pid: row for row, pid in enumerate(previous.manifest.ids)} if previous else {}
    old_hashes: dict[str, str] = previous.manifest.passage_hashes if previous else {}
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
    fields = {
        "format_version": FORMAT_VERSION,
        "model": encoder.model_name,
        "encoder": encoder.kind,
        "dimension": int(encoder.dimension),
        "count": len(passages),
        "index_kind": index.kind,
        "kb_hash": knowledge.version,
        "ids": tuple(row_of),
        "passage_hashes": hashes,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    folder, manifest = _write_snapshot(index_dir, knowledge, index, fields)
    _prune(index_dir, keep=folder.name, source=previous.folder.name if previous else None)
    return StoredIndex(knowledge, index, manifest.ids, manifest, folder), report


def _write_snapshot(
    index_dir: Path, knowledge: KnowledgeBase, index: VectorIndex, fields: dict[str, Any]
) -> tuple[Path, Manifest]:
    name = f"snap-{knowledge.version}-{uuid.uuid4().hex[:8]}"
    staging = index_dir / f"{STAGING_PREFIX}{name}"
    final = index_dir / name
    staging.mkdir()
    try:
        _write_data_files(staging, knowledge, index)
        manifest = Manifest(**fields, files={file: file_sha256(staging / file) for file in DATA_FILES})
        write_durably(staging / MANIFEST, manifest.model_dump_json(indent=2))
        fsync_dir(staging)
        os.rename(staging, final)
        fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic_write_text(index_dir / CURRENT, name + "\n")
    log.info("index snapshot %s written (%d passages)", name, manifest.count)
    return final, manifest


def _write_data_files(staging: Path, knowledge: KnowledgeBase, index: VectorIndex) -> None:
    """Write and fsync every data file (the manifest, written last, hashes them)."""
    import faiss

    faiss.write_index(index.as_faiss(), str(staging / FAISS_FILE))
    fsync_file(staging / FAISS_FILE)
    with (staging / VECTORS_FILE).open("wb") as handle:
        np.save(handle, index.vectors, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    write_durably(staging / PASSAGES_FILE, "".join(
        json.dumps({**p.to_record(), "file": p.file.name}, ensure_ascii=False) + "\n"
        for p in knowledge.passages.values()
    ))
    write_durably(staging / KNOWLEDGE_FILE, json.dumps(_knowledge_meta(knowledge), ensure_ascii=False))


def _knowledge_meta(knowledge: KnowledgeBase) -> dict[str, Any]:
    return {
        "topics": [
            {"slug": t.slug, "title": t.title, "file": t.file.name, "passage_ids": list(t.passage_ids)}
            for t in knowledge.topics.values()
        ],
        "examples": list(knowledge.examples),
        "scope": knowledge.scope,
    }


def _prune(index_dir: Path, keep: str, source: str | None) -> None:
    """Keep the new snapshot and one previous: the one the build reused (known good), else the newest.

    Readers in other processes may still hold a pruned one: they fall back when it vanishes.
    """
    others = [folder for folder in snapshot_folders(index_dir) if folder.name != keep]
    others.sort(key=lambda folder: folder.name != source)  # stable: the build's source first, then newest
    for stale in others[KEEP_SNAPSHOTS - 1:]:
        shutil.rmtree(stale, ignore_errors=True)
