"""The saved index: manifest, no pickle, atomic snapshots, corruption recovery, incremental builds."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bot.core import store
from bot.core.engine import Engine
from bot.core.files import file_sha256
from bot.core.knowledge import KnowledgeBase
from bot.core.store import current_snapshot_name, load_current, open_or_build, text_hash
from tests.conftest import make_settings
from tests.support.fake_encoder import FakeEncoder
from tests.support.kb import (
    DEBRIS,
    add_passage,
    mini_documents,
    new_passage,
    passage,
    with_passage_change,
    write_documents,
)
from tests.support.snapshots import build_index, corrupt_faiss, knowledge_in


def _snapshot_folders(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.is_dir())


# -- manifest and file formats ----------------------------------------------------------------------


def test_manifest_records_format_model_dimension_count_hashes_and_versions(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    stored, _ = build_index(tmp_path, fake_encoder)
    manifest = json.loads((stored.folder / "manifest.json").read_text(encoding="utf-8"))
    knowledge = stored.knowledge
    assert manifest["format_version"] == store.FORMAT_VERSION
    assert manifest["model"] == fake_encoder.model_name
    assert manifest["encoder"] == fake_encoder.kind
    assert manifest["dimension"] == fake_encoder.dimension
    assert manifest["count"] == len(knowledge) == 7
    assert manifest["kb_hash"] == knowledge.version
    assert manifest["ids"] == list(knowledge.passages)
    assert manifest["passage_hashes"] == {p.id: text_hash(p.embedded_text) for p in knowledge.passages.values()}
    built_at = dt.datetime.fromisoformat(manifest["built_at"])
    assert abs(dt.datetime.now(dt.UTC) - built_at) < dt.timedelta(hours=1)
    assert {"faiss-cpu", "numpy"} <= set(manifest["versions"])
    assert set(manifest["files"]) == {"index.faiss", "vectors.npy", "passages.jsonl", "knowledge.json"}
    for name, digest in manifest["files"].items():
        assert file_sha256(stored.folder / name) == digest


def test_index_files_load_without_pickle(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    import faiss

    stored, _ = build_index(tmp_path, fake_encoder)
    vectors = np.load(stored.folder / "vectors.npy", allow_pickle=False)
    assert vectors.dtype == np.float32
    assert vectors.shape == (7, fake_encoder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert faiss.read_index(str(stored.folder / "index.faiss")).ntotal == 7
    rows = [json.loads(line) for line in (stored.folder / "passages.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == list(stored.ids)
    json.loads((stored.folder / "knowledge.json").read_text(encoding="utf-8"))
    leftovers = [p.name for p in (tmp_path / "index").rglob("*") if p.suffix in {".pkl", ".pickle", ".joblib"}]
    assert leftovers == []


def test_current_names_the_snapshot_and_no_staging_folder_is_left(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    stored, _ = build_index(tmp_path, fake_encoder)
    index_dir = tmp_path / "index"
    assert current_snapshot_name(index_dir) == stored.folder.name
    assert stored.folder.parent == index_dir
    assert not [name for name in os.listdir(index_dir) if name.startswith(".tmp")]


def test_saved_index_round_trips_knowledge_and_vectors(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    stored, _ = build_index(tmp_path, fake_encoder)
    loaded = load_current(tmp_path / "index", fake_encoder)
    assert loaded.ids == stored.ids
    assert loaded.knowledge.version == stored.knowledge.version
    assert {pid: p.to_dict() for pid, p in loaded.knowledge.passages.items()} == {
        pid: p.to_dict() for pid, p in stored.knowledge.passages.items()}
    np.testing.assert_array_equal(loaded.vectors.vectors, stored.vectors.vectors)


def test_matching_index_is_loaded_without_embedding_anything(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    fake_encoder.reset_counts()
    second, report = open_or_build(first.knowledge, fake_encoder, tmp_path / "index")
    assert fake_encoder.encoded == 0
    assert second.folder == first.folder
    assert report.reused == 7
    assert (report.added, report.changed, report.removed, report.rebuilt_reason) == ((), (), (), None)


def test_forced_rebuild_embeds_every_passage(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    fake_encoder.reset_counts()
    second, report = open_or_build(first.knowledge, fake_encoder, tmp_path / "index", force=True)
    assert fake_encoder.encoded == 7
    assert second.folder != first.folder
    assert report.rebuilt_reason == "forced rebuild"


def test_old_snapshots_are_pruned_to_the_current_and_one_previous(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    stored, _ = build_index(tmp_path, fake_encoder)
    for _ in range(3):
        stored, _ = open_or_build(stored.knowledge, fake_encoder, tmp_path / "index", force=True)
    snapshots = [name for name in _snapshot_folders(tmp_path / "index") if name.startswith("snap-")]
    assert len(snapshots) == 2
    assert stored.folder.name in snapshots


# -- atomic writes ----------------------------------------------------------------------------------


def _changed_knowledge(tmp_path: Path) -> KnowledgeBase:
    return knowledge_in(write_documents(tmp_path / "knowledge2", with_passage_change(DEBRIS, text="A new text.")))


def test_crash_while_writing_a_snapshot_leaves_the_previous_one_current(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    index_dir = tmp_path / "index"
    real_write = store.write_durably

    def crash_on_manifest(path: Path, text: str) -> None:
        if path.name == "manifest.json":
            raise OSError("disk full (simulated)")
        real_write(path, text)

    monkeypatch.setattr(store, "write_durably", crash_on_manifest)
    with pytest.raises(OSError, match="simulated"):
        open_or_build(_changed_knowledge(tmp_path), fake_encoder, index_dir)
    monkeypatch.undo()

    assert current_snapshot_name(index_dir) == first.folder.name
    assert not [name for name in os.listdir(index_dir) if name.startswith(".tmp")]
    survivor = load_current(index_dir, fake_encoder)
    assert survivor.knowledge.version == first.knowledge.version
    np.testing.assert_array_equal(survivor.vectors.vectors, first.vectors.vectors)


def test_crash_while_replacing_current_leaves_the_previous_snapshot_current(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    index_dir = tmp_path / "index"
    before = (index_dir / "CURRENT").read_text(encoding="utf-8")

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("power cut (simulated)")

    monkeypatch.setattr(store.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        open_or_build(_changed_knowledge(tmp_path), fake_encoder, index_dir)
    monkeypatch.undo()

    assert (index_dir / "CURRENT").read_text(encoding="utf-8") == before
    assert load_current(index_dir, fake_encoder).knowledge.version == first.knowledge.version


def test_engine_keeps_serving_the_previous_snapshot_after_a_crashed_reload(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge_dir = write_documents(tmp_path / "knowledge", mini_documents())
    engine = Engine.open(make_settings(tmp_path, knowledge_dir=knowledge_dir), fake_encoder)
    version = engine.snapshot.version
    write_documents(knowledge_dir, with_passage_change(DEBRIS, text="A new text about the FCC rule."))

    def crash(path: Path, text: str) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(store, "write_durably", crash)
    try:
        report = engine.reload_sync("tester")
    except OSError:
        report = None
    monkeypatch.undo()
    assert report is None or not report.ok, "a reload whose snapshot could not be written cannot succeed"
    assert engine.snapshot.version == version
    assert engine.answer("FCC five-year deorbit rule").answered


# -- corruption and mismatch ------------------------------------------------------------------------


def _truncate_vectors(folder: Path) -> None:
    path = folder / "vectors.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"format_version": 1, "model": ', encoding="utf-8")


def _wrong_model_in_manifest(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["model"] = "some-other-model"
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _wrong_format_version(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 999
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _delete_passages(folder: Path) -> None:
    (folder / "passages.jsonl").unlink()


def _delete_faiss(folder: Path) -> None:
    (folder / "index.faiss").unlink()


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "corrupt-index-faiss": corrupt_faiss,
    "truncated-vectors-npy": _truncate_vectors,
    "garbled-manifest": _garble_manifest,
    "manifest-names-another-model": _wrong_model_in_manifest,
    "manifest-format-version": _wrong_format_version,
    "missing-passages-jsonl": _delete_passages,
    "missing-index-faiss": _delete_faiss,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_damaged_index_is_detected_logged_and_rebuilt(
    tmp_path: Path, fake_encoder: FakeEncoder, caplog: pytest.LogCaptureFixture, corrupt: Callable[[Path], None]
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    corrupt(first.folder)
    fake_encoder.reset_counts()
    with caplog.at_level(logging.WARNING, logger="bot.core.store"):
        rebuilt, report = open_or_build(first.knowledge, fake_encoder, tmp_path / "index")
    assert report.rebuilt_reason
    assert any("unusable" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING), caplog.text
    assert fake_encoder.encoded == 7
    assert rebuilt.folder != first.folder
    reloaded = load_current(tmp_path / "index", fake_encoder)
    assert reloaded.folder == rebuilt.folder
    np.testing.assert_allclose(reloaded.vectors.vectors, first.vectors.vectors, rtol=1e-6)


def test_empty_current_pointer_serves_the_saved_snapshot_without_embedding(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    (tmp_path / "index" / "CURRENT").write_text("", encoding="utf-8")
    fake_encoder.reset_counts()
    again, report = open_or_build(first.knowledge, fake_encoder, tmp_path / "index")
    assert (fake_encoder.encoded, report.rebuilt_reason) == (0, None)
    assert current_snapshot_name(tmp_path / "index") == again.folder.name == first.folder.name


def test_manifest_with_wrongly_typed_fields_is_rebuilt_not_a_crash(
    tmp_path: Path, fake_encoder: FakeEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    """BUG: a manifest that parses but whose "files" is not a mapping raises AttributeError in _check_files."""
    first, _ = build_index(tmp_path, fake_encoder)
    manifest = json.loads((first.folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"] = None
    (first.folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.core.store"):
        rebuilt, report = open_or_build(first.knowledge, fake_encoder, tmp_path / "index")
    assert report.rebuilt_reason
    assert rebuilt.folder != first.folder


@pytest.mark.parametrize(
    "other",
    [
        FakeEncoder(model_name="fake:another-model"),
        FakeEncoder(kind="onnx-int8"),
        FakeEncoder(dimension=128),
    ],
    ids=["other-model", "other-encoder-kind", "other-dimension"],
)
def test_index_built_with_another_encoder_is_rebuilt(
    tmp_path: Path, fake_encoder: FakeEncoder, caplog: pytest.LogCaptureFixture, other: FakeEncoder
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    other.reset_counts()
    with caplog.at_level(logging.WARNING, logger="bot.core.store"):
        rebuilt, report = open_or_build(first.knowledge, other, tmp_path / "index")
    assert "built with" in str(report.rebuilt_reason)
    assert "unusable" in caplog.text
    assert other.encoded == 7, "vectors from another encoder must never be reused"
    manifest = rebuilt.manifest
    assert (manifest.model, manifest.encoder, manifest.dimension) == (other.model_name, other.kind, other.dimension)


@pytest.mark.parametrize("corrupt", [corrupt_faiss, _truncate_vectors, _garble_manifest],
                         ids=["corrupt-index-faiss", "truncated-vectors-npy", "garbled-manifest"])
def test_engine_starts_and_answers_over_a_damaged_index(
    tmp_path: Path, fake_encoder: FakeEncoder, caplog: pytest.LogCaptureFixture, corrupt: Callable[[Path], None]
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    corrupt(first.folder)
    settings = make_settings(tmp_path)
    with caplog.at_level(logging.WARNING):
        engine = Engine.open(settings, fake_encoder)
    assert "unusable" in caplog.text
    answer = engine.answer("FCC five-year deorbit rule")
    assert answer.answered
    assert answer.passages[0].passage.id == DEBRIS


# -- incremental builds -----------------------------------------------------------------------------


def test_changing_one_passage_embeds_exactly_that_passage(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    fake_encoder.reset_counts()
    documents = with_passage_change(DEBRIS, text="The FCC now requires deorbiting within five years.")
    second, report = build_index(tmp_path, fake_encoder, documents)
    assert fake_encoder.encoded == 1
    assert fake_encoder.encoded_texts == [second.knowledge.passages[DEBRIS].embedded_text]
    assert report.changed == (DEBRIS,)
    assert report.added == ()
    assert report.removed == ()
    assert report.reused == 6
    for pid in second.ids:
        row_new, row_old = second.ids.index(pid), first.ids.index(pid)
        if pid != DEBRIS:
            np.testing.assert_array_equal(second.vectors.vectors[row_new], first.vectors.vectors[row_old])
    assert load_current(tmp_path / "index", fake_encoder).knowledge.passages[DEBRIS].text.startswith("The FCC now")


def test_changing_a_title_re_embeds_that_passage(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    build_index(tmp_path, fake_encoder)
    fake_encoder.reset_counts()
    _, report = build_index(tmp_path, fake_encoder, with_passage_change(DEBRIS, title="A brand new title"))
    assert (report.changed, fake_encoder.encoded) == ((DEBRIS,), 1)


def test_changing_only_tags_embeds_nothing_but_writes_a_new_snapshot(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    first, _ = build_index(tmp_path, fake_encoder)
    fake_encoder.reset_counts()
    second, report = build_index(tmp_path, fake_encoder, with_passage_change(DEBRIS, tags=["debris", "fcc", "rules"]))
    assert fake_encoder.encoded == 0
    assert report.reused == 7
    assert second.folder != first.folder
    assert load_current(tmp_path / "index", fake_encoder).knowledge.passages[DEBRIS].tags == ("debris", "fcc", "rules")


def test_adding_a_passage_embeds_only_the_new_one(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    build_index(tmp_path, fake_encoder)
    fake_encoder.reset_counts()
    documents = mini_documents()
    add_passage(documents, "moon.yaml", new_passage(
        "moon-2024-05-change-6-launch", title="Chang'e-6 launches to the far side (May 2024)",
        text="China launched Chang'e-6 to return samples from the far side of the Moon.", date=dt.date(2024, 5, 3)))
    stored, report = build_index(tmp_path, fake_encoder, documents)
    assert report.added == ("moon-2024-05-change-6-launch",)
    assert (report.changed, report.removed, report.reused) == ((), (), 7)
    assert fake_encoder.encoded == 1
    assert len(stored.ids) == 8


def test_removing_a_passage_is_reported_and_embeds_nothing(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    build_index(tmp_path, fake_encoder)
    fake_encoder.reset_counts()
    documents = mini_documents()
    documents["space-debris.yaml"]["passages"] = [passage(documents, DEBRIS)]
    stored, report = build_index(tmp_path, fake_encoder, documents)
    assert report.removed == ("debris-2021-11-russian-asat-test",)
    assert (report.added, report.changed, report.reused) == ((), (), 6)
    assert fake_encoder.encoded == 0
    assert "debris-2021-11-russian-asat-test" not in stored.ids
    assert stored.vectors.count == 6
