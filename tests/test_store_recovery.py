"""No pointer, manifest or data file can stop the store: it falls back to a good snapshot or rebuilds.

Issue 9, defect 2 (a garbled ``CURRENT`` wedged every command) and defect 6 (a snapshot deleted by
another process while it was checked raised ``FileNotFoundError``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.core import stored_index
from bot.core.files import file_sha256
from bot.core.store import IndexUnusableError, StoredIndex, current_snapshot_name, load_current, open_or_build
from tests.support.fake_encoder import FakeEncoder
from tests.support.kb import DEBRIS, with_passage_change
from tests.support.snapshots import build_index, corrupt_faiss


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- the CURRENT pointer ----------------------------------------------------------------------------

GARBLED_POINTERS: dict[str, bytes] = {
    "non-utf8-bytes": b"\xff\xfe snap \xc3\x28\n",
    "empty": b"",
    "blank-lines": b"\n  \n",
    "name-with-a-slash": b"snap-abc/../../outside\n",
    "parent-folder": b"..\n",
    "absolute-path": b"/etc\n",
    "name-of-a-missing-folder": b"snap-000000000000-deadbeef\n",
    "nul-byte": b"snap-\x00abc\n",
    "two-names": b"snap-aaa\nsnap-bbb\n",
}


@pytest.mark.parametrize("pointer", GARBLED_POINTERS.values(), ids=GARBLED_POINTERS.keys())
def test_garbled_current_pointer_reads_as_no_snapshot_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, pointer: bytes
) -> None:
    index_dir = tmp_path / "index"
    (index_dir / "snap-aaa").mkdir(parents=True)
    (index_dir / "CURRENT").write_bytes(pointer)
    with caplog.at_level(logging.WARNING):
        assert current_snapshot_name(index_dir) is None
    assert any("CURRENT" in message for message in _warnings(caplog)), caplog.text


def test_missing_current_pointer_reads_as_no_snapshot_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "index").mkdir()
    with caplog.at_level(logging.WARNING):
        assert current_snapshot_name(tmp_path / "index") is None
    assert _warnings(caplog) == []


@pytest.mark.parametrize("pointer", GARBLED_POINTERS.values(), ids=GARBLED_POINTERS.keys())
def test_garbled_current_pointer_falls_back_to_the_saved_snapshot_and_is_repaired(
    tmp_path: Path, fake_encoder: FakeEncoder, pointer: bytes
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    index_dir = tmp_path / "index"
    (index_dir / "CURRENT").write_bytes(pointer)
    fake_encoder.reset_counts()
    again, report = open_or_build(first.knowledge, fake_encoder, index_dir)
    assert fake_encoder.encoded == 0
    assert again.folder == first.folder
    assert report.reused == 7
    assert current_snapshot_name(index_dir) == first.folder.name


def test_garbled_current_pointer_over_a_damaged_snapshot_means_a_rebuild(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    index_dir = tmp_path / "index"
    (first.folder / "vectors.npy").write_bytes(b"\x93NUMPY truncated")
    (index_dir / "CURRENT").write_bytes(GARBLED_POINTERS["non-utf8-bytes"])
    fake_encoder.reset_counts()
    rebuilt, report = open_or_build(first.knowledge, fake_encoder, index_dir)
    assert fake_encoder.encoded == 7
    assert report.rebuilt_reason
    assert current_snapshot_name(index_dir) == rebuilt.folder.name != first.folder.name


def test_load_current_without_a_readable_pointer_serves_the_newest_good_snapshot(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    (tmp_path / "index" / "CURRENT").write_bytes(GARBLED_POINTERS["non-utf8-bytes"])
    loaded = load_current(tmp_path / "index", fake_encoder)
    assert loaded.folder == first.folder
    assert loaded.knowledge.version == first.knowledge.version


# -- falling back to the previous snapshot ----------------------------------------------------------


def _two_snapshots(tmp_path: Path, encoder: FakeEncoder) -> tuple[StoredIndex, StoredIndex]:
    first, _ = build_index(tmp_path, encoder)
    second, _ = build_index(tmp_path, encoder, with_passage_change(DEBRIS, text="The FCC rule now has a new text."))
    assert second.folder != first.folder
    return first, second


def test_load_current_serves_the_previous_snapshot_when_the_current_one_is_damaged(
    tmp_path: Path, fake_encoder: FakeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = _two_snapshots(tmp_path, fake_encoder)
    corrupt_faiss(second.folder)
    with caplog.at_level(logging.WARNING):
        loaded = load_current(tmp_path / "index", fake_encoder)
    assert loaded.folder == first.folder
    assert loaded.knowledge.version == first.knowledge.version
    assert any(second.folder.name in message for message in _warnings(caplog)), caplog.text


def test_load_current_without_fallback_reports_the_damaged_current_snapshot(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    _, second = _two_snapshots(tmp_path, fake_encoder)
    corrupt_faiss(second.folder)
    with pytest.raises(IndexUnusableError, match=r"index\.faiss"):
        load_current(tmp_path / "index", fake_encoder, fallback=False)


def test_rebuild_over_a_damaged_current_snapshot_reuses_the_previous_snapshots_vectors(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    first, second = _two_snapshots(tmp_path, fake_encoder)
    corrupt_faiss(second.folder)
    fake_encoder.reset_counts()
    rebuilt, report = open_or_build(second.knowledge, fake_encoder, tmp_path / "index")
    assert fake_encoder.encoded_texts == [second.knowledge.passages[DEBRIS].embedded_text]
    assert (report.changed, report.reused) == ((DEBRIS,), 6)
    assert rebuilt.folder not in (first.folder, second.folder)
    assert current_snapshot_name(tmp_path / "index") == rebuilt.folder.name
    kept = sorted(p.name for p in (tmp_path / "index").iterdir() if p.name.startswith("snap-"))
    assert kept == sorted([first.folder.name, rebuilt.folder.name]), "the previous snapshot kept is the good one"


# -- the manifest -----------------------------------------------------------------------------------


def _edit_manifest(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        edit(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    return apply


def _write_manifest_bytes(content: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / "manifest.json").write_bytes(content)


def _drop_last_id(manifest: dict[str, Any]) -> None:
    dropped = manifest["ids"].pop()
    del manifest["passage_hashes"][dropped]


# name -> (damage, a word the reason must name)
BAD_MANIFESTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "not-json": (_write_manifest_bytes(b'{"format_version": 1, "model": '), "manifest"),
    "not-utf8": (_write_manifest_bytes(b'{"format_version": 1, "model": "\xff\xfe"}'), "manifest"),
    "a-list": (_write_manifest_bytes(b"[]"), "manifest"),
    "missing-file": (lambda folder: (folder / "manifest.json").unlink(), "manifest"),
    "format-version-999": (_edit_manifest(lambda m: m.update(format_version=999)), "format_version"),
    "dimension-as-text": (_edit_manifest(lambda m: m.update(dimension="256")), "dimension"),
    "negative-count": (_edit_manifest(lambda m: m.update(count=-7)), "count"),
    "ids-not-strings": (_edit_manifest(lambda m: m.update(ids=list(range(7)))), "ids"),
    "fewer-ids-than-count": (_edit_manifest(_drop_last_id), "ids"),
    "duplicate-ids": (_edit_manifest(lambda m: m["ids"].__setitem__(1, m["ids"][0])), "ids"),
    "hashes-for-other-ids": (_edit_manifest(lambda m: m.update(passage_hashes={"other": "0" * 16})), "passage_hashes"),
    "files-not-a-mapping": (_edit_manifest(lambda m: m.update(files=None)), "files"),
    "files-without-the-faiss-hash": (_edit_manifest(lambda m: m["files"].pop("index.faiss")), "index.faiss"),
    "unknown-index-kind": (_edit_manifest(lambda m: m.update(index_kind="lsh")), "index_kind"),
}


@pytest.mark.parametrize("damage", [d for d, _ in BAD_MANIFESTS.values()], ids=BAD_MANIFESTS.keys())
def test_unreadable_manifest_means_a_logged_rebuild(
    tmp_path: Path, fake_encoder: FakeEncoder, caplog: pytest.LogCaptureFixture, damage: Callable[[Path], None]
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    damage(first.folder)
    fake_encoder.reset_counts()
    with caplog.at_level(logging.WARNING):
        rebuilt, report = open_or_build(first.knowledge, fake_encoder, tmp_path / "index")
    assert report.rebuilt_reason
    assert fake_encoder.encoded == 7
    assert rebuilt.folder != first.folder
    assert any("unusable" in message for message in _warnings(caplog)), caplog.text
    assert load_current(tmp_path / "index", fake_encoder).folder == rebuilt.folder


@pytest.mark.parametrize("damage, named", BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_unreadable_manifest_is_reported_with_its_snapshot_and_field(
    tmp_path: Path, fake_encoder: FakeEncoder, damage: Callable[[Path], None], named: str
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    damage(first.folder)
    with pytest.raises(IndexUnusableError) as raised:
        load_current(tmp_path / "index", fake_encoder, fallback=False)
    reason = str(raised.value)
    assert "manifest" in reason
    assert first.folder.name in reason
    assert named in reason


# -- data files that match their manifest hash but cannot serve -------------------------------------


def _replace_data_file(name: str, content: Callable[[Path], bytes]) -> Callable[[Path], None]:
    """Rewrite a data file and its manifest hash, as a buggy or foreign writer would."""

    def apply(folder: Path) -> None:
        (folder / name).write_bytes(content(folder / name))
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        manifest["files"][name] = file_sha256(folder / name)
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    return apply


def _npy_bytes(array: np.ndarray, tmp: Path) -> bytes:
    target = tmp.with_name("scratch.npy")
    np.save(target, array, allow_pickle=True)
    data = target.read_bytes()
    target.unlink()
    return data


def _rename_first_row(path: Path) -> bytes:
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    row["id"] = "a-passage-of-another-knowledge-base"
    return "\n".join([json.dumps(row), *lines[1:]]).encode("utf-8") + b"\n"


def _drop_last_row(path: Path) -> bytes:
    return "".join(line + "\n" for line in path.read_text(encoding="utf-8").splitlines()[:-1]).encode("utf-8")


def _retitle_first_row(path: Path) -> bytes:
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    row["title"] = 42
    return "\n".join([json.dumps(row), *lines[1:]]).encode("utf-8") + b"\n"


BAD_VECTOR_FILES: dict[str, Callable[[Path], None]] = {
    "vectors-of-text": _replace_data_file("vectors.npy", lambda p: _npy_bytes(np.full((7, 256), "a"), p)),
    "vectors-of-objects": _replace_data_file("vectors.npy", lambda p: _npy_bytes(np.full((7, 256), None), p)),
    "vectors-truncated": _replace_data_file("vectors.npy", lambda p: p.read_bytes()[:200]),
    "faiss-file-not-faiss": _replace_data_file("index.faiss", lambda p: b"not a faiss index"),
    "faiss-file-missing": lambda folder: (folder / "index.faiss").unlink(),
}

# Rows a reader cannot turn into the knowledge base the manifest lists (as a foreign writer, or an
# older passage format, could leave them while keeping the hashes right).
BAD_PASSAGE_FILES: dict[str, Callable[[Path], None]] = {
    "passages-not-utf8": _replace_data_file("passages.jsonl", lambda p: b"\xff\xfe\n"),
    "passages-row-not-an-object": _replace_data_file("passages.jsonl", lambda p: b"[1, 2]\n"),
    "passages-of-another-knowledge-base": _replace_data_file("passages.jsonl", _rename_first_row),
    "passages-missing-a-row": _replace_data_file("passages.jsonl", _drop_last_row),
    "passage-title-a-number": _replace_data_file("passages.jsonl", _retitle_first_row),
    "knowledge-meta-a-list": _replace_data_file("knowledge.json", lambda p: b"[]"),
}


@pytest.mark.parametrize("damage", BAD_VECTOR_FILES.values(), ids=BAD_VECTOR_FILES.keys())
def test_vector_file_that_cannot_serve_means_a_rebuild(
    tmp_path: Path, fake_encoder: FakeEncoder, damage: Callable[[Path], None]
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    damage(first.folder)
    with pytest.raises(IndexUnusableError, match=re.escape(first.folder.name)):
        load_current(tmp_path / "index", fake_encoder, fallback=False)
    fake_encoder.reset_counts()
    rebuilt, report = open_or_build(first.knowledge, fake_encoder, tmp_path / "index")
    assert report.rebuilt_reason
    assert fake_encoder.encoded == 7
    assert load_current(tmp_path / "index", fake_encoder).folder == rebuilt.folder != first.folder


@pytest.mark.parametrize("damage", BAD_PASSAGE_FILES.values(), ids=BAD_PASSAGE_FILES.keys())
def test_passages_that_cannot_be_read_make_readers_fall_back_to_the_previous_snapshot(
    tmp_path: Path, fake_encoder: FakeEncoder, damage: Callable[[Path], None]
) -> None:
    first, second = _two_snapshots(tmp_path, fake_encoder)
    damage(second.folder)
    with pytest.raises(IndexUnusableError, match=re.escape(second.folder.name)):
        load_current(tmp_path / "index", fake_encoder, fallback=False)
    loaded = load_current(tmp_path / "index", fake_encoder)
    assert loaded.folder == first.folder
    assert loaded.knowledge.version == first.knowledge.version


@pytest.mark.parametrize("damage", BAD_PASSAGE_FILES.values(), ids=BAD_PASSAGE_FILES.keys())
def test_a_build_reuses_vectors_whatever_the_snapshots_passage_rows(
    tmp_path: Path, fake_encoder: FakeEncoder, damage: Callable[[Path], None]
) -> None:
    """A build brings its own knowledge: it needs a snapshot's vectors and manifest, not its rows."""
    first, _ = build_index(tmp_path, fake_encoder)
    damage(first.folder)
    fake_encoder.reset_counts()
    documents = with_passage_change(DEBRIS, text="The FCC rule now has a new text.")
    second, report = build_index(tmp_path, fake_encoder, documents)
    assert fake_encoder.encoded_texts == [second.knowledge.passages[DEBRIS].embedded_text]
    assert (report.changed, report.reused, report.rebuilt_reason) == ((DEBRIS,), 6, None)
    assert load_current(tmp_path / "index", fake_encoder).folder == second.folder


# -- a snapshot deleted by another process while it is read -----------------------------------------


def test_snapshot_deleted_while_its_files_are_checked_is_unusable_not_a_crash(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    real_sha256 = stored_index.file_sha256

    def pruned_by_another_process(path: Path) -> str:
        shutil.rmtree(first.folder, ignore_errors=True)
        return real_sha256(path)

    monkeypatch.setattr(stored_index, "file_sha256", pruned_by_another_process)
    with pytest.raises(IndexUnusableError, match=re.escape(first.folder.name)):
        load_current(tmp_path / "index", fake_encoder, fallback=False)
    monkeypatch.undo()
    fake_encoder.reset_counts()
    rebuilt, report = open_or_build(first.knowledge, fake_encoder, tmp_path / "index")
    assert report.rebuilt_reason
    assert fake_encoder.encoded == 7
    assert rebuilt.folder.is_dir()

