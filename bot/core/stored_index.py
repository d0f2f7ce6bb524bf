"""Reading saved index snapshots: the ``CURRENT`` pointer, one snapshot's files, and the fallback.

Every way a snapshot can fail to serve (a garbled pointer; a missing or invalid manifest; a data file
missing, truncated, of the wrong shape or type, or of another knowledge base; a folder deleted by
another process while it is read) ends as a ``None`` pointer or an ``IndexUnusableError``, never as
another exception. Reading takes no lock: a snapshot is never changed once renamed into place.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from bot.core.embedding import Encoder
from bot.core.files import file_sha256
from bot.core.knowledge import KnowledgeBase
from bot.core.manifest import (
    DATA_FILES,
    FAISS_FILE,
    KNOWLEDGE_FILE,
    PASSAGES_FILE,
    VECTORS_FILE,
    IndexUnusableError,
    Manifest,
    describe,
    read_manifest,
)
from bot.core.models import Passage, Topic
from bot.core.vector_index import NUMPY_MAX_ROWS, VectorIndex

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
SNAPSHOT_NAME = re.compile(r"snap-[0-9A-Za-z][0-9A-Za-z_-]*")
QUOTED_CHARACTERS = 80  # of a garbled pointer, in a log line
# faiss.write_index of an IndexFlatIP: fourcc, d, ntotal, two unused counts, is_trained, metric, then the
# vectors as a float32 array (its length, then the floats).
_FLAT_HEADER = struct.Struct("<4siqqq?iQ")
T = TypeVar("T")


@dataclass(frozen=True)
class StoredIndex:
    knowledge: KnowledgeBase
    vectors: VectorIndex
    ids: tuple[str, ...]
    manifest: Manifest
    folder: Path

    @property
    def size_bytes(self) -> int:
        total = 0
        for name in DATA_FILES:
            with contextlib.suppress(OSError):  # pruned by another process meanwhile
                total += (self.folder / name).stat().st_size
        return total


@dataclass(frozen=True)
class SnapshotVectors:
    """What a build reuses from a snapshot: its manifest and vectors (not its passages)."""

    folder: Path
    manifest: Manifest
    vectors: VectorIndex


class _KnowledgeMeta(BaseModel):
    """``knowledge.json``: topics, examples and scope, to rebuild the knowledge base."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    topics: tuple[Topic, ...]
    examples: tuple[str, ...] = ()
    scope: str = ""


# ---------------------------------------------------------------------------------------------
# The pointer and the folders


def current_snapshot_name(index_dir: Path) -> str | None:
    """The snapshot folder ``CURRENT`` names; None when there is none or the pointer is unusable (logged)."""
    pointer = index_dir / CURRENT
    try:
        raw = pointer.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unusable_pointer(pointer, f"unreadable ({exc.strerror or exc})")
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return _unusable_pointer(pointer, "not UTF-8 text")
    if not SNAPSHOT_NAME.fullmatch(name):
        return _unusable_pointer(pointer, f"{name[:QUOTED_CHARACTERS]!r} is not a snapshot name")
    if not (index_dir / name).is_dir():
        return _unusable_pointer(pointer, f"it names {name}, which does not exist")
    return name


def _unusable_pointer(pointer: Path, problem: str) -> None:
    log.warning("index pointer %s is unusable: %s", pointer, problem)


def snapshot_folders(index_dir: Path) -> list[Path]:
    """The snapshot folders in ``index_dir``, newest first (skipping any deleted meanwhile)."""
    try:
        entries = list(index_dir.iterdir())
    except OSError:
        return []
    dated = []
    for path in entries:
        if not SNAPSHOT_NAME.fullmatch(path.name):
            continue
        with contextlib.suppress(OSError):
            status = path.stat()
            if stat.S_ISDIR(status.st_mode):
                dated.append((status.st_mtime_ns, path.name, path))
    return [path for *_, path in sorted(dated, reverse=True)]


# ---------------------------------------------------------------------------------------------
# Loading


def load_current(
    index_dir: Path, encoder: Encoder, knowledge: KnowledgeBase | None = None, *, fallback: bool = True
) -> StoredIndex:
    """The snapshot ``CURRENT`` names, checked against the encoder (and the knowledge base, when given).

    If it cannot serve and ``fallback`` holds, the newest other snapshot that can (logged); the
    ``IndexUnusableError`` raised when none can says why the current one could not.
    """
    return first_usable(index_dir, lambda folder: load_snapshot(folder, encoder, knowledge), fallback=fallback)


def first_usable(index_dir: Path, load: Callable[[Path], T], *, fallback: bool = True) -> T:
    """``load`` of the snapshot ``CURRENT`` names or, failing that, of the newest other one it succeeds on."""
    name = current_snapshot_name(index_dir)
    reason = f"{index_dir / CURRENT} names no usable snapshot"
    if name is not None:
        try:
            return load(index_dir / name)
        except IndexUnusableError as exc:
            if not fallback:
                raise
            reason = str(exc)
    if fallback:
        for folder in snapshot_folders(index_dir):
            if folder.name == name:
                continue
            try:
                loaded = load(folder)
            except IndexUnusableError as exc:
                log.debug("snapshot %s cannot serve either: %s", folder.name, exc)
                continue
            log.warning("index unusable (%s); falling back to snapshot %s", reason, folder.name)
            return loaded
    raise IndexUnusableError(reason)


def load_snapshot(folder: Path, encoder: Encoder, knowledge: KnowledgeBase | None = None) -> StoredIndex:
    """The snapshot in ``folder``, with the knowledge base given (it must match) or the one it stores."""
    part = load_vectors(folder, encoder, knowledge.version if knowledge is not None else None)
    with _unusable_if_vanished(folder):
        stored_knowledge = knowledge if knowledge is not None else _read_knowledge(folder, part.manifest)
    return StoredIndex(stored_knowledge, part.vectors, part.manifest.ids, part.manifest, folder)


def load_vectors(folder: Path, encoder: Encoder, kb_hash: str | None = None) -> SnapshotVectors:
    """A snapshot's manifest and vectors, its files checked against the manifest, the manifest against the encoder.

    Enough to reuse the vectors in a new build: the passages are not read.
    """
    with _unusable_if_vanished(folder):
        manifest = read_manifest(folder)
        _check_encoder(folder, manifest, encoder)
        if kb_hash is not None and manifest.kb_hash != kb_hash:
            raise IndexUnusableError(f"{folder.name} was built for knowledge base {manifest.kb_hash}, not {kb_hash}")
        _check_files(folder, manifest)
        return SnapshotVectors(folder, manifest, _read_vectors(folder, manifest))


@contextlib.contextmanager
def _unusable_if_vanished(folder: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:  # most often: another process pruned the folder while it was read
        raise IndexUnusableError(f"snapshot {folder.name} vanished or became unreadable: {exc}") from exc


def _check_encoder(folder: Path, manifest: Manifest, encoder: Encoder) -> None:
    built_with = (manifest.model, manifest.encoder, manifest.dimension)
    wanted = (encoder.model_name, encoder.kind, encoder.dimension)
    if built_with != wanted:
        raise IndexUnusableError(f"{folder.name} was built with {built_with}, the query encoder is {wanted}")


def _check_files(folder: Path, manifest: Manifest) -> None:
    for name in DATA_FILES:
        try:
            digest = file_sha256(folder / name)
        except FileNotFoundError as exc:
            raise IndexUnusableError(f"{name} is missing from {folder.name}") from exc
        if digest != manifest.files[name]:
            raise IndexUnusableError(f"{name} in {folder.name} does not match its hash (corrupt or truncated)")


def _read_vectors(folder: Path, manifest: Manifest) -> VectorIndex:
    """The vectors, and the FAISS index unless numpy searches it (a small flat one: the file was hash-checked)."""
    try:
        vectors = np.load(folder / VECTORS_FILE, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise IndexUnusableError(f"cannot read the index in {folder.name}: {_first_line(exc)}") from exc
    expected = (manifest.count, manifest.dimension)
    if vectors.dtype != np.float32 or vectors.shape != expected:
        raise IndexUnusableError(f"the index in {folder.name} is not the {expected} float32 array its manifest states")
    searched_with_numpy = manifest.index_kind == "flat" and manifest.count <= NUMPY_MAX_ROWS
    if searched_with_numpy and _looks_like_flat_index(folder, manifest):
        return VectorIndex(None, vectors, "flat")
    import faiss

    try:
        faiss_index = faiss.read_index(str(folder / FAISS_FILE))
    except (ValueError, RuntimeError, EOFError) as exc:
        raise IndexUnusableError(f"cannot read the index in {folder.name}: {_first_line(exc)}") from exc
    if faiss_index.ntotal != manifest.count or faiss_index.d != manifest.dimension:
        raise IndexUnusableError(f"the index in {folder.name} is not the {expected} float32 array its manifest states")
    return VectorIndex(None if searched_with_numpy else faiss_index, vectors, manifest.index_kind)


def _looks_like_flat_index(folder: Path, manifest: Manifest) -> bool:
    """``index.faiss`` has the header and size FAISS writes for this flat inner-product index (read as
    FAISS does only when not: numpy searches the vectors, so FAISS need not be loaded to check it)."""
    floats = manifest.count * manifest.dimension
    try:
        with (folder / FAISS_FILE).open("rb") as handle:
            header = handle.read(_FLAT_HEADER.size)
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return False
    if len(header) != _FLAT_HEADER.size:
        return False
    magic, dimension, count, _, _, _, _, stored_floats = _FLAT_HEADER.unpack(header)
    return (magic, dimension, count, stored_floats, size) == (
        b"IxFI", manifest.dimension, manifest.count, floats, _FLAT_HEADER.size + 4 * floats)


def _read_knowledge(folder: Path, manifest: Manifest) -> KnowledgeBase:
    """Rebuild the knowledge base from a snapshot, for processes that did not build it."""
    try:
        meta = _KnowledgeMeta.model_validate_json((folder / KNOWLEDGE_FILE).read_bytes())
        rows = (folder / PASSAGES_FILE).read_bytes().splitlines()
        passages = {passage.id: passage for passage in map(_passage_rows().validate_json, rows)}
    except ValidationError as exc:
        raise IndexUnusableError(f"cannot read the passages in {folder.name}: {describe(exc)}") from exc
    try:
        knowledge = KnowledgeBase({t.slug: t for t in meta.topics}, passages, meta.examples, meta.scope)
    except (ValueError, TypeError, KeyError) as exc:
        raise IndexUnusableError(f"cannot rebuild the knowledge base of {folder.name}: {_first_line(exc)}") from exc
    if tuple(knowledge.passages) != manifest.ids:
        raise IndexUnusableError(f"the passages in {folder.name} are not the ones its manifest lists")
    return knowledge


@functools.cache
def _passage_rows() -> TypeAdapter[Passage]:
    """Validates a ``passages.jsonl`` row into a Passage (built on first use: most processes never read rows)."""
    return TypeAdapter(Passage)


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip().splitlines()
    return text[0][:limit] if text else type(error).__name__
