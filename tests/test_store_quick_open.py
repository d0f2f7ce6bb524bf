"""Opening the store quickly: a start whose snapshot is current reads it without the lock, and a manifest
as the store writes it is read without building the model's validator (anything else goes to the model)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from bot.core.manifest import MANIFEST, IndexUnusableError, Manifest, _plain_manifest, read_manifest
from bot.core.store import build_lock, open_or_build
from tests.support.fake_encoder import FakeEncoder
from tests.support.snapshots import build_index


def test_a_start_whose_snapshot_is_current_reads_it_without_waiting_for_the_build_lock(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    built, _ = build_index(tmp_path, fake_encoder)
    opened: list[object] = []

    def open_store() -> None:
        opened.append(open_or_build(built.knowledge, fake_encoder, tmp_path / "index")[0])

    with build_lock(tmp_path / "index"):  # another process building, as far as this one can tell
        reader = threading.Thread(target=open_store)
        reader.start()
        reader.join(timeout=30)
        finished_while_locked = not reader.is_alive()
    reader.join()
    assert finished_while_locked
    assert [stored.folder for stored in opened] == [built.folder]  # type: ignore[attr-defined]


def test_a_manifest_as_the_store_writes_it_reads_the_same_with_or_without_the_model_validator(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    built, _ = build_index(tmp_path, fake_encoder)
    raw = (built.folder / MANIFEST).read_bytes()
    assert _plain_manifest(raw) is not None
    assert read_manifest(built.folder) == Manifest.model_validate_json(raw) == built.manifest


@pytest.mark.parametrize("edit", [
    {"dimension": True}, {"count": 7.0}, {"format_version": "1"}, {"model": ""}, {"index_kind": "lsh"},
    {"versions": {"numpy": 2}}, {"ids": None},
])
def test_a_manifest_the_model_would_refuse_is_left_to_the_model(
    tmp_path: Path, fake_encoder: FakeEncoder, edit: dict[str, object]
) -> None:
    built, _ = build_index(tmp_path, fake_encoder)
    data = json.loads((built.folder / MANIFEST).read_text(encoding="utf-8"))
    (built.folder / MANIFEST).write_text(json.dumps({**data, **edit}), encoding="utf-8")
    assert _plain_manifest((built.folder / MANIFEST).read_bytes()) is None
    with pytest.raises(IndexUnusableError, match=f"invalid manifest in {built.folder.name}: {next(iter(edit))}"):
        read_manifest(built.folder)
