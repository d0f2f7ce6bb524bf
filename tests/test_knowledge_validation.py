"""Validation of knowledge files: every error names the file, the passage, the field and the reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.core.knowledge import load_knowledge
from bot.core.models import ValidationIssue
from tests.support.kb import (
    DEBRIS,
    STORYLINE,
    STORYLINE_FILE,
    STORYLINE_LATEST,
    add_passage,
    mini_documents,
    mini_passage_ids,
    new_passage,
    passage,
    with_passage_change,
    write_documents,
    write_malformed_yaml,
    write_raw,
)


def _errors(directory: Path) -> list[ValidationIssue]:
    result = load_knowledge(directory)
    assert not result.ok, "expected the knowledge files to be rejected"
    assert result.knowledge is None
    return result.errors


def _only_error(directory: Path) -> ValidationIssue:
    errors = _errors(directory)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_valid_mini_knowledge_base_loads_every_passage_and_topic(mini_kb_dir: Path) -> None:
    result = load_knowledge(mini_kb_dir)
    assert result.ok, [str(e) for e in result.errors]
    assert result.knowledge is not None
    assert sorted(result.knowledge.passages) == sorted(mini_passage_ids())
    assert set(result.knowledge.topics) == {"russia-station", "space-debris", "moon"}
    assert result.files == 3
    assert result.warnings == []
    latest = result.knowledge.passages[STORYLINE_LATEST]
    assert latest.supersedes == (STORYLINE[1],)
    assert latest.date == dt.date(2023, 4, 27)
    assert latest.source.url.startswith("https://")


def test_knowledge_version_is_stable_and_changes_with_content(tmp_path: Path) -> None:
    first = load_knowledge(write_documents(tmp_path / "a", mini_documents())).knowledge
    again = load_knowledge(write_documents(tmp_path / "b", mini_documents())).knowledge
    changed_docs = with_passage_change(DEBRIS, text="Changed text.")
    changed = load_knowledge(write_documents(tmp_path / "c", changed_docs)).knowledge
    assert first is not None and again is not None and changed is not None
    assert first.version == again.version
    assert first.version != changed.version


def test_malformed_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    write_malformed_yaml(directory, "broken.yaml")
    error = _only_error(directory)
    assert error.file == "broken.yaml"
    assert "malformed YAML" in error.message
    assert "line" in error.message
    assert str(error).startswith("broken.yaml: ")


def test_yaml_that_is_not_a_mapping_is_rejected_naming_the_file(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    write_raw(directory, "list.yaml", "- just\n- a list\n")
    error = _only_error(directory)
    assert error.file == "list.yaml"
    assert "mapping" in error.message


@pytest.mark.parametrize("field_name", ["title", "text", "date", "source"])
def test_missing_passage_field_names_file_passage_and_field(tmp_path: Path, field_name: str) -> None:
    directory = write_documents(tmp_path / "kb", with_passage_change(DEBRIS, **{field_name: ...}))
    error = _only_error(directory)
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, field_name)
    assert "missing" in error.message
    assert f"space-debris.yaml: passage {DEBRIS}: field '{field_name}'" in str(error)


def test_missing_passage_id_names_the_passage_by_position(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", with_passage_change(DEBRIS, id=...))
    error = _only_error(directory)
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", "#1", "id")
    assert "missing" in error.message


@pytest.mark.parametrize("field_name", ["title", "text"])
def test_empty_passage_field_names_file_passage_and_field(tmp_path: Path, field_name: str) -> None:
    directory = write_documents(tmp_path / "kb", with_passage_change(DEBRIS, **{field_name: "   "}))
    error = _only_error(directory)
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, field_name)
    assert "empty" in error.message


@pytest.mark.parametrize("sub_field", ["publisher", "title", "url"])
def test_empty_source_field_names_the_source_sub_field(tmp_path: Path, sub_field: str) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"][sub_field] = ""
    error = _only_error(write_documents(tmp_path / "kb", documents))
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, f"source.{sub_field}")
    assert "empty" in error.message


@pytest.mark.parametrize("field_name", ["topic", "title"])
def test_missing_topic_field_names_the_file_and_field(tmp_path: Path, field_name: str) -> None:
    documents = mini_documents()
    del documents["moon.yaml"][field_name]
    error = _only_error(write_documents(tmp_path / "kb", documents))
    assert (error.file, error.field) == ("moon.yaml", field_name)
    assert "missing" in error.message


def test_empty_passage_list_is_rejected(tmp_path: Path) -> None:
    documents = mini_documents()
    documents["moon.yaml"]["passages"] = []
    error = _only_error(write_documents(tmp_path / "kb", documents))
    assert (error.file, error.field) == ("moon.yaml", "passages")


def test_topic_slug_must_match_the_file_name(tmp_path: Path) -> None:
    documents = mini_documents()
    documents["moon.yaml"]["topic"] = "lunar"
    error = _only_error(write_documents(tmp_path / "kb", documents))
    assert (error.file, error.field) == ("moon.yaml", "topic")
    assert "'lunar'" in error.message and "moon" in error.message


def test_passage_id_must_be_kebab_case(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", with_passage_change(DEBRIS, id="Debris_FCC"))
    error = _only_error(directory)
    assert (error.file, error.field) == ("space-debris.yaml", "id")
    assert "Debris_FCC" in str(error.passage)
    assert "kebab-case" in error.message


def test_duplicate_id_names_both_files(tmp_path: Path) -> None:
    documents = mini_documents()
    duplicate = new_passage(DEBRIS, title="A second passage with the same id",
                            text="This passage reuses an id from another file.", date=dt.date(2022, 1, 1))
    add_passage(documents, "moon.yaml", duplicate)
    error = _only_error(write_documents(tmp_path / "kb", documents))
    assert error.passage == DEBRIS
    assert error.field == "id"
    assert "duplicate" in error.message
    named = {error.file, *(name for name in ("moon.yaml", "space-debris.yaml") if name in error.message)}
    assert named == {"moon.yaml", "space-debris.yaml"}, str(error)


@pytest.mark.parametrize("url", ["ftp://example.org/file", "javascript:alert(1)", "www.example.org/page", "http://"])
def test_non_http_url_is_rejected_naming_the_url(tmp_path: Path, url: str) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["url"] = url
    error = _only_error(write_documents(tmp_path / "kb", documents))
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "source.url")
    assert url in error.message
    assert "http" in error.message


def test_future_date_is_rejected(tmp_path: Path) -> None:
    future = dt.date.today() + dt.timedelta(days=30)
    error = _only_error(write_documents(tmp_path / "kb", with_passage_change(DEBRIS, date=future)))
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "date")
    assert future.isoformat() in error.message
    assert "future" in error.message


def test_today_is_not_in_the_future(tmp_path: Path) -> None:
    result = load_knowledge(write_documents(tmp_path / "kb", with_passage_change(DEBRIS, date=dt.date.today())))
    assert result.ok, [str(e) for e in result.errors]


def test_non_iso_date_is_rejected(tmp_path: Path) -> None:
    error = _only_error(write_documents(tmp_path / "kb", with_passage_change(DEBRIS, date="29 September 2022")))
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "date")
    assert "ISO" in error.message


def test_impossible_calendar_date_is_a_validation_error_not_a_crash(tmp_path: Path) -> None:
    """BUG: an unquoted impossible date (2022-02-30) makes PyYAML raise ValueError, which escapes load_knowledge."""
    directory = write_documents(tmp_path / "kb", mini_documents())
    text = (directory / "space-debris.yaml").read_text(encoding="utf-8")
    assert "date: 2022-09-29" in text
    (directory / "space-debris.yaml").write_text(text.replace("date: 2022-09-29", "date: 2022-02-30"), encoding="utf-8")
    errors = _errors(directory)
    assert any(e.file == "space-debris.yaml" and "2022-02-30" in str(e) for e in errors), [str(e) for e in errors]


def test_text_longer_than_900_characters_is_rejected(tmp_path: Path) -> None:
    long_text = "The station " + "orbits " * 140 + "Earth."
    assert len(long_text) > 900
    error = _only_error(write_documents(tmp_path / "kb", with_passage_change(DEBRIS, text=long_text)))
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "text")
    assert "900" in error.message


def test_text_with_more_than_five_sentences_is_rejected(tmp_path: Path) -> None:
    six = " ".join(f"Sentence number {n} is here." for n in range(1, 7))
    error = _only_error(write_documents(tmp_path / "kb", with_passage_change(DEBRIS, text=six)))
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "text")
    assert "6 sentences" in error.message


def test_five_sentences_with_abbreviations_are_accepted(tmp_path: Path) -> None:
    text = ("The U.S. and the U.K. signed it. Dr. Smith and Gen. Raymond spoke. NASA agreed, e.g. on crews. "
            "It took effect in Jan. 2022. It is still in force.")
    result = load_knowledge(write_documents(tmp_path / "kb", with_passage_change(DEBRIS, text=text)))
    assert result.ok, [str(e) for e in result.errors]


def test_supersedes_unknown_id_is_rejected(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", with_passage_change(DEBRIS, supersedes=["no-such-passage"]))
    error = _only_error(directory)
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "supersedes")
    assert "no-such-passage" in error.message
    assert "unknown" in error.message


def test_supersedes_a_newer_passage_is_rejected(tmp_path: Path) -> None:
    # The 2022 passage claims to supersede the 2023 one.
    documents = mini_documents()
    passage(documents, STORYLINE_LATEST)["supersedes"] = []
    passage(documents, STORYLINE[1])["supersedes"] = [STORYLINE_LATEST]
    error = _only_error(write_documents(tmp_path / "kb", documents))
    assert (error.file, error.passage, error.field) == (STORYLINE_FILE, STORYLINE[1], "supersedes")
    assert STORYLINE_LATEST in error.message
    assert "newer" in error.message


def test_supersedes_cycle_is_rejected_naming_the_cycle(tmp_path: Path) -> None:
    # Same dates, so only the cycle itself is wrong.
    documents = mini_documents()
    for pid in STORYLINE:
        passage(documents, pid)["date"] = dt.date(2023, 4, 27)
    passage(documents, STORYLINE[0])["supersedes"] = [STORYLINE_LATEST]
    errors = _errors(write_documents(tmp_path / "kb", documents))
    cycles = [e for e in errors if "cycle" in e.message]
    assert len(cycles) == 1, [str(e) for e in errors]
    assert len(errors) == 1, [str(e) for e in errors]
    cycle = cycles[0]
    assert cycle.file == STORYLINE_FILE
    assert cycle.field == "supersedes"
    assert cycle.passage in STORYLINE
    assert all(pid in cycle.message for pid in STORYLINE)


def test_passage_superseding_itself_is_rejected(tmp_path: Path) -> None:
    errors = _errors(write_documents(tmp_path / "kb", with_passage_change(DEBRIS, supersedes=[DEBRIS])))
    assert errors
    assert all((e.file, e.passage, e.field) == ("space-debris.yaml", DEBRIS, "supersedes") for e in errors)


def test_unknown_passage_field_is_rejected(tmp_path: Path) -> None:
    error = _only_error(write_documents(tmp_path / "kb", with_passage_change(DEBRIS, summary="typo'd field")))
    assert (error.file, error.passage, error.field) == ("space-debris.yaml", DEBRIS, "summary")


def test_all_errors_in_all_files_are_reported_at_once(tmp_path: Path) -> None:
    documents = mini_documents()
    passage(documents, DEBRIS)["source"]["url"] = "ftp://example.org"
    passage(documents, "debris-2021-11-russian-asat-test")["date"] = dt.date.today() + dt.timedelta(days=5)
    passage(documents, "moon-2020-10-artemis-accords-signed")["title"] = ""
    passage(documents, STORYLINE[1])["supersedes"] = ["missing-id"]
    directory = write_documents(tmp_path / "kb", documents)
    write_malformed_yaml(directory, "zz-broken.yaml")
    errors = _errors(directory)
    found = {(e.file, e.passage, e.field) for e in errors}
    assert found >= {
        ("space-debris.yaml", DEBRIS, "source.url"),
        ("space-debris.yaml", "debris-2021-11-russian-asat-test", "date"),
        ("moon.yaml", "moon-2020-10-artemis-accords-signed", "title"),
        (STORYLINE_FILE, STORYLINE[1], "supersedes"),
        ("zz-broken.yaml", None, None),
    }, [str(e) for e in errors]
    assert len(errors) == 5, [str(e) for e in errors]


def test_missing_knowledge_directory_is_an_error_not_a_crash(tmp_path: Path) -> None:
    errors = _errors(tmp_path / "nowhere")
    assert "not found" in errors[0].message


def test_empty_knowledge_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    errors = _errors(tmp_path / "empty")
    assert "no *.yaml" in errors[0].message


def test_near_duplicate_passage_is_a_warning_not_an_error(tmp_path: Path) -> None:
    documents = mini_documents()
    original = passage(documents, DEBRIS)["text"]
    near = original.replace("five years", "5 years")
    add_passage(documents, "moon.yaml", new_passage(
        "moon-2022-10-copy", title="An accidental copy", text=near, date=dt.date(2022, 10, 1)))
    result = load_knowledge(write_documents(tmp_path / "kb", documents))
    assert result.ok, [str(e) for e in result.errors]
    assert len(result.warnings) == 1, [str(w) for w in result.warnings]
    warning = result.warnings[0]
    assert warning.severity == "warning"
    assert warning.field == "text"
    assert {warning.passage, *(pid for pid in (DEBRIS, "moon-2022-10-copy") if pid in warning.message)} == {
        DEBRIS, "moon-2022-10-copy"}
    assert "near-duplicate" in warning.message


def test_clearly_different_passages_raise_no_near_duplicate_warning(mini_kb_dir: Path) -> None:
    assert load_knowledge(mini_kb_dir).warnings == []


@pytest.mark.parametrize("broken_copy", ["first", "second"])
def test_duplicate_id_is_reported_even_when_one_copy_has_another_error(tmp_path: Path, broken_copy: str) -> None:
    """BUG: duplicates are looked up among valid passages only, so a broken copy hides the duplicate id."""
    documents = mini_documents()
    duplicate = new_passage(DEBRIS, title="A second passage with the same id",
                            text="This passage reuses an id from another file.", date=dt.date(2022, 1, 1))
    add_passage(documents, "moon.yaml", duplicate)  # moon.yaml is read before space-debris.yaml
    if broken_copy == "first":
        duplicate["title"] = ""
    else:
        passage(documents, DEBRIS)["title"] = ""
    errors = _errors(write_documents(tmp_path / "kb", documents))
    assert any(e.passage == DEBRIS and e.field == "title" for e in errors), [str(e) for e in errors]
    assert any(e.field == "id" and "duplicate" in e.message for e in errors), [str(e) for e in errors]


def test_near_duplicate_search_finds_exactly_the_pairs_an_all_pairs_comparison_finds() -> None:
    """The character-count bound that skips most comparisons never skips a near-duplicate."""
    from rapidfuzz import fuzz, process

    from bot.core.knowledge_checks import NEAR_DUPLICATE_RATIO, _similar_pairs

    words = ["orbit", "station", "Roscosmos", "NASA", "module", "lunar", "é", "2028", "deorbit"]
    texts = [" ".join(words[(seed * 7 + k * k) % len(words)] for k in range(3 + seed % 90)) for seed in range(150)]
    texts += [text[:-2] + "xy" for text in texts[:40]] + [text + " ISS" for text in texts[40:70]]
    scores = process.cdist(texts, texts, scorer=fuzz.ratio, score_cutoff=NEAR_DUPLICATE_RATIO)
    expected = sorted((int(i), int(j)) for i, j in zip(*scores.nonzero(), strict=True) if i < j)
    found = sorted((i, j) for i, j, _ in _similar_pairs(texts, NEAR_DUPLICATE_RATIO))
    assert len(expected) > 20
    assert found == expected
