"""The passage fields added for the second edition: kind, corrects, checked, note, source.found, source.repost."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from bot.core.knowledge import load_knowledge
from bot.core.models import Passage, Source, ValidationIssue
from tests.support.kb import (
    DEBRIS,
    STORYLINE,
    STORYLINE_FILE,
    STORYLINE_LATEST,
    mini_documents,
    passage,
    with_passage_change,
    write_documents,
)

DEBRIS_DATE = dt.date(2022, 9, 29)


def _load(tmp_path: Path, documents: dict[str, dict[str, Any]]) -> Any:
    return load_knowledge(write_documents(tmp_path / "kb", documents))


def _only_error(tmp_path: Path, documents: dict[str, dict[str, Any]]) -> ValidationIssue:
    result = _load(tmp_path, documents)
    assert not result.ok
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    return result.errors[0]


def _loaded_passage(tmp_path: Path, documents: dict[str, dict[str, Any]], passage_id: str) -> Passage:
    result = _load(tmp_path, documents)
    assert result.ok, [str(e) for e in result.errors]
    return result.knowledge.passages[passage_id]


# -- kind ----------------------------------------------------------------------------------------


def test_kind_defaults_to_event(mini_kb_dir: Path) -> None:
    knowledge = load_knowledge(mini_kb_dir).knowledge
    assert knowledge is not None
    assert {p.kind for p in knowledge.passages.values()} == {"event"}


@pytest.mark.parametrize("kind", ["event", "plan", "proposal", "background"])
def test_each_kind_is_accepted_and_kept(tmp_path: Path, kind: str) -> None:
    assert _loaded_passage(tmp_path, with_passage_change(DEBRIS, kind=kind), DEBRIS).kind == kind


def test_unknown_kind_names_the_allowed_kinds(tmp_path: Path) -> None:
    error = _only_error(tmp_path, with_passage_change(DEBRIS, kind="rumour"))
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "kind")
    assert "'rumour'" in error.message
    assert all(kind in error.message for kind in ("event", "plan", "proposal", "background"))


def test_proposal_superseding_an_event_is_rejected(tmp_path: Path) -> None:
    documents = mini_documents()
    passage(documents, STORYLINE_LATEST)["kind"] = "proposal"
    error = _only_error(tmp_path, documents)
    assert (error.file, error.passage, error.field) == (STORYLINE_FILE, STORYLINE_LATEST, "supersedes")
    assert "proposal may only supersede proposals" in error.message
    assert STORYLINE[1] in error.message


def test_proposal_superseding_a_proposal_is_accepted(tmp_path: Path) -> None:
    documents = mini_documents()
    passage(documents, STORYLINE_LATEST)["kind"] = "proposal"
    passage(documents, STORYLINE[1]).update(kind="proposal", supersedes=[])
    assert _loaded_passage(tmp_path, documents, STORYLINE_LATEST).kind == "proposal"


def test_an_event_may_supersede_a_proposal(tmp_path: Path) -> None:
    """A law enacted replaces the bill it came from."""
    documents = mini_documents()
    passage(documents, STORYLINE[1]).update(kind="proposal", supersedes=[])
    assert _loaded_passage(tmp_path, documents, STORYLINE_LATEST).kind == "event"


# -- corrects ------------------------------------------------------------------------------------


def test_corrects_statements_are_kept_in_order(tmp_path: Path) -> None:
    statements = ["Russia has not left the ISS.", "Roscosmos has not set a firm date for leaving."]
    loaded = _loaded_passage(tmp_path, with_passage_change(STORYLINE_LATEST, corrects=statements), STORYLINE_LATEST)
    assert loaded.corrects == tuple(statements)


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("Russia has not left the ISS", "period"),
        ("russia has not left the ISS.", "subject"),
        ("Russia has not left the ISS. It stays until 2028.", "one sentence"),
        ("", "missing or empty"),
    ],
    ids=["no-period", "lower-case-start", "two-sentences", "empty"],
)
def test_corrects_entry_must_be_one_sentence_with_subject_and_period(
    tmp_path: Path, statement: str, reason: str
) -> None:
    documents = with_passage_change(STORYLINE_LATEST, corrects=["Russia still flies to the ISS.", statement])
    error = _only_error(tmp_path, documents)
    assert (error.file, error.passage, error.field) == (STORYLINE_FILE, STORYLINE_LATEST, "corrects")
    assert "entry 2" in error.message
    assert reason in error.message


def test_corrects_on_a_superseded_passage_is_a_warning_naming_its_successor(tmp_path: Path) -> None:
    documents = with_passage_change(STORYLINE[1], corrects=["Russia has not left the ISS."])
    result = _load(tmp_path, documents)
    assert result.ok, [str(e) for e in result.errors]
    assert [(w.passage, w.field) for w in result.warnings] == [(STORYLINE[1], "corrects")]
    assert STORYLINE_LATEST in result.warnings[0].message


def test_corrects_on_the_head_of_a_storyline_raises_no_warning(tmp_path: Path) -> None:
    documents = with_passage_change(STORYLINE_LATEST, corrects=["Russia has not left the ISS."])
    assert _load(tmp_path, documents).warnings == []


def test_corrects_must_be_a_list(tmp_path: Path) -> None:
    error = _only_error(tmp_path, with_passage_change(DEBRIS, corrects="Russia has not left the ISS."))
    assert (error.field, error.message) == ("corrects", "must be a list")


# -- checked -------------------------------------------------------------------------------------


def test_checked_is_optional_and_parsed_as_a_date(tmp_path: Path, mini_kb_dir: Path) -> None:
    knowledge = load_knowledge(mini_kb_dir).knowledge
    assert knowledge is not None and knowledge.passages[DEBRIS].checked is None
    loaded = _loaded_passage(tmp_path, with_passage_change(DEBRIS, checked="2026-03-02"), DEBRIS)
    assert loaded.checked == dt.date(2026, 3, 2)


def test_checked_in_the_future_is_rejected(tmp_path: Path) -> None:
    future = dt.date.today() + dt.timedelta(days=3)
    error = _only_error(tmp_path, with_passage_change(DEBRIS, checked=future.isoformat()))
    assert (error.passage, error.field) == (DEBRIS, "checked")
    assert "future" in error.message and future.isoformat() in error.message


def test_checked_before_the_passage_date_is_rejected(tmp_path: Path) -> None:
    earlier = DEBRIS_DATE - dt.timedelta(days=1)
    error = _only_error(tmp_path, with_passage_change(DEBRIS, checked=earlier.isoformat()))
    assert (error.passage, error.field) == (DEBRIS, "checked")
    assert "before the passage's date" in error.message


def test_checked_that_is_not_an_iso_date_is_rejected(tmp_path: Path) -> None:
    error = _only_error(tmp_path, with_passage_change(DEBRIS, checked="March 2026"))
    assert (error.field, "ISO" in error.message) == ("checked", True)


# -- note, found, repost -------------------------------------------------------------------------


def test_source_found_false_without_a_note_is_rejected(tmp_path: Path) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["found"] = False
    error = _only_error(tmp_path, documents)
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "note")
    assert "source.found is false" in error.message


def test_source_found_false_with_a_note_is_accepted_and_counted(tmp_path: Path) -> None:
    documents = with_passage_change(DEBRIS, note="The FCC's fact sheet (fcc.gov/document/5) states the same.")
    passage(documents, DEBRIS)["source"]["found"] = False
    result = _load(tmp_path, documents)
    assert result.ok, [str(e) for e in result.errors]
    loaded = result.knowledge.passages[DEBRIS]
    assert (loaded.source.found, loaded.note is not None) == (False, True)
    assert result.stats.not_found == 1


@pytest.mark.parametrize("field_name", ["found", "repost"])
def test_found_and_repost_must_be_true_or_false(tmp_path: Path, field_name: str) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"][field_name] = "yes"
    error = _only_error(tmp_path, documents)
    assert (error.field, error.message) == (f"source.{field_name}", "must be true or false")


def test_found_and_repost_default_to_found_and_original(mini_kb_dir: Path) -> None:
    knowledge = load_knowledge(mini_kb_dir).knowledge
    assert knowledge is not None
    assert {(p.source.found, p.source.repost) for p in knowledge.passages.values()} == {(True, False)}


def test_empty_note_is_rejected(tmp_path: Path) -> None:
    error = _only_error(tmp_path, with_passage_change(DEBRIS, note="  "))
    assert (error.field, error.message) == ("note", "missing or empty")


# -- what users see and what the version covers -------------------------------------------------


def test_to_dict_shows_kind_corrects_and_checked_but_never_the_note(tmp_path: Path) -> None:
    documents = with_passage_change(STORYLINE_LATEST, kind="plan", corrects=["Russia has not left the ISS."],
                                    checked="2026-03-02", note="moderators only")
    data = _loaded_passage(tmp_path, documents, STORYLINE_LATEST).to_dict()
    assert (data["kind"], data["corrects"], data["checked"]) == ("plan", ["Russia has not left the ISS."], "2026-03-02")
    assert "note" not in data
    assert "moderators only" not in repr(data)


def test_knowledge_version_changes_when_only_a_note_changes(tmp_path: Path) -> None:
    first = load_knowledge(write_documents(tmp_path / "a", with_passage_change(DEBRIS, note="First note.")))
    second = load_knowledge(write_documents(tmp_path / "b", with_passage_change(DEBRIS, note="Second note.")))
    assert first.knowledge is not None and second.knowledge is not None
    assert first.knowledge.passages[DEBRIS].to_dict() == second.knowledge.passages[DEBRIS].to_dict()
    assert first.knowledge.version != second.knowledge.version


def test_passage_built_without_the_new_fields_keeps_working() -> None:
    built = Passage(id="p", title="T", text="Text.", date=dt.date(2024, 1, 1),
                    source=Source("P", "S", "https://example.org/a"), topic="t", file=Path("t.yaml"))
    assert (built.kind, built.corrects, built.checked, built.note) == ("event", (), None, None)
    assert built.to_dict()["source"] == {"publisher": "P", "title": "S", "url": "https://example.org/a",
                                         "found": True, "repost": False}


def test_passage_record_holds_every_field_the_file_gave(tmp_path: Path) -> None:
    """The record (hashed, and stored in index snapshots) loses nothing: other processes rebuild from it."""
    documents = with_passage_change(STORYLINE_LATEST, kind="plan", corrects=["Russia has not left the ISS."],
                                    checked="2026-03-02", note="moderators only")
    passage(documents, STORYLINE_LATEST)["source"]["repost"] = True
    record = _loaded_passage(tmp_path, documents, STORYLINE_LATEST).to_record()
    assert set(record) == {f.name for f in dataclasses.fields(Passage)} - {"file"}
    assert (record["kind"], record["checked"], record["note"]) == ("plan", "2026-03-02", "moderators only")
    assert record["source"]["repost"] is True
    rebuilt = TypeAdapter(Passage).validate_python({**record, "file": Path("russia-station.yaml")})
    assert rebuilt.to_record() == record
