"""Durable file helpers shared by the index store and the ONNX model cache.

Writes go to a temporary name and are renamed into place, so a reader sees the old content or the
new, never a part; an exclusive file lock (``filelock``: ``flock`` on POSIX, ``msvcrt`` on Windows)
serializes writers across processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

# Libraries whose versions a saved artifact (an index snapshot, an ONNX export) records or depends on.
VERSIONED_PACKAGES = (
    "faiss-cpu", "numpy", "sentence-transformers", "transformers", "optimum", "optimum-onnx", "onnx",
    "onnxruntime", "torch", "tokenizers",
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_durably(path: Path, text: str) -> None:
    """Write and fsync a file (its folder is expected to be renamed into place afterwards)."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Replace a file so that readers see the old or the new content, never a part."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    write_durably(temporary, text)
    os.replace(temporary, path)
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Make a rename or creation inside ``folder`` durable (Windows cannot open a folder, nor needs to)."""
    if os.name == "nt":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def exclusive_lock(lock_file: Path, *, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if missing) for the duration of the block.

    Blocks until the holder releases it (or dies: the operating system drops its lock). Not
    re-entrant: taking the same lock again inside the block waits forever. ``waiting`` is logged
    once when another holder makes this one wait.
    """
    from filelock import FileLock, Timeout  # here: a start that only reads the index takes no lock

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if waiting:
            log.info("%s", waiting)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed versions of the given distributions, skipping those not installed."""
    from importlib import metadata  # here: it imports the email package, which a start does not need

    versions = {}
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries saved artifacts depend on."""
    return package_versions(VERSIONED_PACKAGES)
