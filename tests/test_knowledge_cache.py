"""The knowledge parse cache: unchanged files are reused as they validated, changed ones validated again."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from bot.core.knowledge import load_knowledge
from bot.core.knowledge_cache import read_cache
from tests.support.kb import (
    DEBRIS,
    STORYLINE_FILE,
    STORYLINE_LATEST,
    mini_documents,
    passage,
    with_passage_change,
    write_documents,
)

DEBRIS_FILE = "space-debris.yaml"


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "index" / "knowledge-cache.jsonl"


def test_cached_load_gives_the_same_knowledge_base_as_parsing(mini_kb_dir: Path, cache_file: Path) -> None:
    parsed = load_knowledge(mini_kb_dir)
    first = load_knowledge(mini_kb_dir, cache_file=cache_file)
    cached = load_knowledge(mini_kb_dir, cache_file=cache_file)
    assert parsed.knowledge is not None and cached.knowledge is not None and first.knowledge is not None
    assert cached.knowledge.version == parsed.knowledge.version == first.knowledge.version
    assert cached.knowledge.passages == parsed.knowledge.passages
    assert cached.knowledge.topics == parsed.knowledge.topics
    assert cached.knowledge.examples == parsed.knowledge.examples
    assert cached.warnings == parsed.warnings
    assert cached.stats == parsed.stats and cached.files == parsed.files


def test_files_whose_hashes_match_are_not_parsed_again(
    mini_kb_dir: Path, cache_file: Path
) -> None:
    load_knowledge(mini_kb_dir, cache_file=cache_file)
    result = load_knowledge(mini_kb_dir, cache_file=cache_file)
    assert result.ok
    assert result.parsed == ()


def test_only_the_changed_file_is_parsed_and_its_change_is_seen(
    tmp_path: Path, cache_file: Path
) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    load_knowledge(directory, cache_file=cache_file)
    write_documents(directory, with_passage_change(DEBRIS, text="The FCC now requires deorbit within five years."))
    result = load_knowledge(directory, cache_file=cache_file)
    assert result.knowledge is not None
    assert result.parsed == (DEBRIS_FILE,)
    assert result.knowledge.passages[DEBRIS].text == "The FCC now requires deorbit within five years."


def test_a_bad_edit_to_a_cached_file_is_rejected_with_its_file_passage_and_field(
    tmp_path: Path, cache_file: Path
) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    assert load_knowledge(directory, cache_file=cache_file).ok
    write_documents(directory, with_passage_change(DEBRIS, date="last week"))
    result = load_knowledge(directory, cache_file=cache_file)
    assert result.knowledge is None
    assert [(e.file, e.passage, e.field) for e in result.errors] == [(DEBRIS_FILE, DEBRIS, "date")]


def test_a_file_that_failed_validation_is_not_cached(tmp_path: Path, cache_file: Path) -> None:
    documents = with_passage_change(DEBRIS, date="last week")
    directory = write_documents(tmp_path / "kb", documents)
    assert not load_knowledge(directory, cache_file=cache_file).ok
    assert DEBRIS_FILE not in read_cache(cache_file).files
    assert STORYLINE_FILE in read_cache(cache_file).files
    again = load_knowledge(directory, cache_file=cache_file)
    assert [(e.file, e.passage, e.field) for e in again.errors] == [(DEBRIS_FILE, DEBRIS, "date")]


def test_a_duplicate_id_across_files_is_still_caught_when_both_files_are_cached(
    tmp_path: Path, cache_file: Path
) -> None:
    documents = mini_documents()
    directory = write_documents(tmp_path / "kb", documents)
    assert load_knowledge(directory, cache_file=cache_file).ok
    copy = dict(passage(documents, STORYLINE_LATEST))
    write_documents(directory, {"zz-extra.yaml": {"topic": "zz-extra", "title": "Extra", "passages": [copy]}})
    result = load_knowledge(directory, cache_file=cache_file)
    assert result.knowledge is None
    assert [(e.file, e.passage, e.field) for e in result.errors] == [("zz-extra.yaml", STORYLINE_LATEST, "id")]


def test_a_garbled_cache_entry_falls_back_to_parsing_the_file(
    mini_kb_dir: Path, cache_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = load_knowledge(mini_kb_dir, cache_file=cache_file).knowledge
    lines = cache_file.read_text(encoding="utf-8").splitlines()
    garbled = [line.replace("Artemis", "Artemix") if " moon.yaml " in line else line for line in lines]
    assert garbled != lines
    cache_file.write_text("\n".join(garbled) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        result = load_knowledge(mini_kb_dir, cache_file=cache_file)
    assert result.knowledge is not None and expected is not None
    assert result.parsed == ("moon.yaml",)
    assert result.knowledge.passages == expected.passages
    assert "does not match its hash" in caplog.text


def test_a_cache_entry_with_a_malformed_record_falls_back_to_parsing(
    mini_kb_dir: Path, cache_file: Path
) -> None:
    load_knowledge(mini_kb_dir, cache_file=cache_file)
    cache = read_cache(cache_file)
    entry = cache.files["moon.yaml"]
    broken = type(entry)(entry.source_hash, entry.slug, entry.title, entry.examples,
                         ({**entry.records[0], "date": "not a date"}, *entry.records[1:]), entry.latest_date)
    from bot.core.knowledge_cache import write_cache

    write_cache(cache_file, {**cache.files, "moon.yaml": broken}, cache.warnings)
    result = load_knowledge(mini_kb_dir, cache_file=cache_file)
    assert result.ok
    assert result.parsed == ("moon.yaml",)


@pytest.mark.parametrize("content", ["", "not the cache\n", "\x00\xff garbage", '{"format": 99}\n'])
def test_an_unreadable_cache_file_means_parsing_everything(
    mini_kb_dir: Path, cache_file: Path, content: str
) -> None:
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text(content, encoding="utf-8")
    result = load_knowledge(mini_kb_dir, cache_file=cache_file)
    assert result.ok
    assert sorted(result.parsed) == sorted(p.name for p in mini_kb_dir.glob("*.yaml"))
    assert len(read_cache(cache_file).files) == len(result.parsed)


def test_an_entry_is_not_used_on_a_day_before_its_newest_date(
    mini_kb_dir: Path, cache_file: Path
) -> None:
    load_knowledge(mini_kb_dir, cache_file=cache_file)
    result = load_knowledge(mini_kb_dir, cache_file=cache_file, today=dt.date(2022, 1, 1))
    assert not result.ok
    assert any(e.field == "date" and "future" in e.message for e in result.errors)
    assert STORYLINE_FILE in result.parsed


def test_a_broken_supersedes_link_is_caught_though_the_file_it_points_from_is_cached(
    tmp_path: Path, cache_file: Path
) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    assert load_knowledge(directory, cache_file=cache_file).ok
    documents = mini_documents()
    del documents[STORYLINE_FILE]["passages"][1]  # the middle of the storyline: the latest still supersedes it
    write_documents(directory, documents)
    result = load_knowledge(directory, cache_file=cache_file)
    assert result.parsed == (STORYLINE_FILE,)
    assert result.knowledge is None
    assert [(e.file, e.passage, e.field) for e in result.errors] == [(STORYLINE_FILE, STORYLINE_LATEST, "supersedes")]


def test_warnings_are_the_same_when_every_file_comes_from_the_cache(tmp_path: Path, cache_file: Path) -> None:
    documents = mini_documents()
    twin = {**passage(documents, DEBRIS), "id": "debris-twin"}
    documents[DEBRIS_FILE]["passages"].append(twin)
    directory = write_documents(tmp_path / "kb", documents)
    fresh = load_knowledge(directory, cache_file=cache_file)
    cached = load_knowledge(directory, cache_file=cache_file)
    assert cached.parsed == ()
    assert [(w.passage, w.field) for w in fresh.warnings] == [(DEBRIS, "text")]
    assert cached.warnings == fresh.warnings
