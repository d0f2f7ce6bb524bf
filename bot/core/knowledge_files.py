"""The knowledge folder as plain texts: read it whole, or replace it with texts from elsewhere.

Several processes on several machines serve one knowledge base: the process that validated a
reload publishes the texts of its files, and every other process writes them into its own
knowledge folder with :func:`write_knowledge_files` before reloading from it. Only the files the
loader reads (``*.yaml`` and ``scope.md``) are part of the knowledge base; anything else in the
folder (its README, a moderator's notes) is neither published nor touched.

Nothing is lost when a publication replaces the files: a local edit that was never reloaded (or made
while the bot was down) would otherwise vanish. Every text replaced or removed is kept first in
``.replaced/<UTC time>/`` inside the folder (which the loader and publishing never read), the newest
:data:`KEEP_REPLACED` sets of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from bot.core.files import atomic_write_text, fsync_dir
from bot.core.knowledge import SCOPE_FILE

log = logging.getLogger(__name__)

KNOWLEDGE_SUFFIX = ".yaml"
REPLACED_DIR = ".replaced"
KEEP_REPLACED = 10


class UnsafeFileNameError(ValueError):
    """A name that is not a plain knowledge file name (a path, a hidden file, another kind of file)."""


def is_knowledge_file_name(name: str) -> bool:
    """A plain file name the loader reads: ``topic.yaml`` or ``scope.md``, no folder, not hidden."""
    if not name or name != Path(name).name or "\\" in name or name.startswith("."):
        return False
    return name == SCOPE_FILE or name.endswith(KNOWLEDGE_SUFFIX)


def read_knowledge_files(directory: Path) -> dict[str, str]:
    """The texts of the files that make up the knowledge base, by file name (sorted)."""
    if not directory.is_dir():
        return {}
    names = sorted(p.name for p in directory.iterdir() if p.is_file() and is_knowledge_file_name(p.name))
    return {name: (directory / name).read_text(encoding="utf-8") for name in names}


def write_knowledge_files(directory: Path, files: Mapping[str, str]) -> list[str]:
    """Make the folder's knowledge files exactly ``files``; returns the names written or removed.

    Each file is replaced atomically (a reader sees the old text or the new, never a part); files
    whose text is already right are left alone, and knowledge files not in ``files`` are removed.
    Raises :class:`UnsafeFileNameError` before touching anything if a name is not a plain one.
    """
    unsafe = [name for name in files if not is_knowledge_file_name(name)]
    if unsafe:
        raise UnsafeFileNameError(f"not knowledge file names: {', '.join(map(repr, sorted(unsafe)))}")
    directory.mkdir(parents=True, exist_ok=True)
    present = {p.name for p in directory.iterdir() if p.is_file() and is_knowledge_file_name(p.name)}
    rewritten = [name for name, text in sorted(files.items()) if not _holds(directory / name, text)]
    removed = sorted(present - set(files))
    kept = _keep_replaced(directory, [name for name in rewritten if name in present] + removed)
    if kept is not None:
        log.info("knowledge folder %s: the texts about to be replaced are kept in %s", directory, kept)
    for name in rewritten:
        atomic_write_text(directory / name, files[name])
    for name in removed:
        (directory / name).unlink(missing_ok=True)
    touched = rewritten + removed
    if touched:
        fsync_dir(directory)
        log.info("knowledge folder %s: %d file(s) written or removed", directory, len(touched))
    return touched


def _holds(path: Path, text: str) -> bool:
    try:
        return path.read_bytes() == text.encode("utf-8")
    except FileNotFoundError:
        return False


def _keep_replaced(directory: Path, names: list[str]) -> Path | None:
    """Copy these files into a new ``.replaced/<UTC time>/`` folder; drop the oldest beyond KEEP_REPLACED."""
    if not names:
        return None
    root = directory / REPLACED_DIR
    folder = root / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy2(directory / name, folder / name)
    fsync_dir(folder)
    for old in sorted(p for p in root.iterdir() if p.is_dir())[:-KEEP_REPLACED]:
        shutil.rmtree(old, ignore_errors=True)
    return folder
