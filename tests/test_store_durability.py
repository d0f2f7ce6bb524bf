"""A killed build leaves nothing behind for long, and a snapshot is on disk before it is renamed into place.

Issue 9, defect 6.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.core.store import current_snapshot_name, open_or_build
from tests.support.fake_encoder import FakeEncoder
from tests.support.kb import DEBRIS, with_passage_change
from tests.support.snapshots import build_index


def test_opening_the_store_removes_stale_staging_but_keeps_snapshots_and_other_files(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    second, _ = build_index(tmp_path, fake_encoder, with_passage_change(DEBRIS, text="A new text for the FCC rule."))
    index_dir = tmp_path / "index"
    killed_build = index_dir / ".tmp-snap-0123456789ab-deadbeef"
    killed_build.mkdir()
    (killed_build / "vectors.npy").write_bytes(b"\x93NUMPY half written")
    killed_pointer = index_dir / ".CURRENT.deadbeef.tmp"
    killed_pointer.write_text("snap-0123456789ab-deadbeef\n", encoding="utf-8")
    unrelated = index_dir / "notes.txt"
    unrelated.write_text("a moderator's note", encoding="utf-8")

    fake_encoder.reset_counts()
    opened, _ = open_or_build(second.knowledge, fake_encoder, index_dir)

    assert fake_encoder.encoded == 0
    assert opened.folder == second.folder
    assert not killed_build.exists()
    assert not killed_pointer.exists()
    assert first.folder.is_dir() and second.folder.is_dir()
    assert unrelated.read_text(encoding="utf-8") == "a moderator's note"
    assert current_snapshot_name(index_dir) == second.folder.name


def _identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_dev, status.st_ino


def test_every_file_of_a_snapshot_and_its_folder_are_fsynced_before_it_is_renamed_into_place(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, object]] = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def recording_fsync(descriptor: int) -> None:
        status = os.fstat(descriptor)
        events.append(("fsync", (status.st_dev, status.st_ino)))
        real_fsync(descriptor)

    def recording_rename(source: str | Path, target: str | Path) -> None:
        events.append(("rename", Path(target).name))
        real_rename(source, target)

    def recording_replace(source: str | Path, target: str | Path) -> None:
        events.append(("rename", Path(target).name))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "rename", recording_rename)
    monkeypatch.setattr(os, "replace", recording_replace)
    stored, _ = build_index(tmp_path, fake_encoder)
    monkeypatch.undo()

    renamed_at = events.index(("rename", stored.folder.name))
    synced_before = {key for kind, key in events[:renamed_at] if kind == "fsync"}
    synced_after = {key for kind, key in events[renamed_at:] if kind == "fsync"}
    files = sorted(stored.folder.iterdir())
    expected = {"index.faiss", "vectors.npy", "passages.jsonl", "knowledge.json", "manifest.json"}
    assert {p.name for p in files} >= expected
    unsynced = [p.name for p in [*files, stored.folder] if _identity(p) not in synced_before]
    assert unsynced == []
    assert _identity(tmp_path / "index") in synced_after, "the rename itself must reach the disk"
