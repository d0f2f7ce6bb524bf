"""The shipped knowledge files: each validates, cites http(s) sources with past dates, and leads right.

Expectations are derived from the files themselves (the passage nothing supersedes), so researchers
can add topics and passages without editing this module.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from bot.core.engine import Engine
from bot.core.knowledge import LoadResult, load_knowledge
from bot.core.knowledge_rules import REPOST_SHARE_LIMIT, is_aggregator
from bot.core.models import Answer
from bot.core.yaml_loader import StrictYamlError, load_yaml
from tests.conftest import SHIPPED_KNOWLEDGE

FILES = sorted(SHIPPED_KNOWLEDGE.glob("*.yaml"))
FILE_IDS = [path.name for path in FILES]


def _raw_passages(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name} is not a mapping"
    passages = document.get("passages")
    assert isinstance(passages, list) and passages, f"{path.name} has no passages"
    return passages


def _readable_passages(path: Path) -> list[dict[str, Any]]:
    """The file's passage mappings, or none when the file is broken: the validation tests report that,
    and collecting this module must not fail because of it."""
    try:
        return [p for p in _raw_passages(path) if isinstance(p, dict)]
    except (AssertionError, yaml.YAMLError, OSError, UnicodeDecodeError):
        return []


def _storyline_heads() -> list[tuple[str, str]]:
    """(id, title) of every passage on a supersedes chain that no passage supersedes."""
    passages = [p for path in FILES for p in _readable_passages(path)]
    superseded = {str(target) for p in passages for target in (p.get("supersedes") or [])}
    return sorted(
        (str(p.get("id")), str(p.get("title")))
        for p in passages
        if p.get("supersedes") and str(p.get("id")) not in superseded
    )


HEADS = _storyline_heads()
_TRAILING_DATE = re.compile(r"\s*\([^()]*\)\s*$")


def question_from_title(title: str) -> str:
    """The title without its trailing "(Month Year)": a question about the subject, not about a time."""
    return _TRAILING_DATE.sub("", title).removeprefix("Current position:").strip()


@pytest.fixture(scope="module")
def shipped_load() -> LoadResult:
    return load_knowledge(SHIPPED_KNOWLEDGE)


def test_shipped_knowledge_folder_has_topic_files() -> None:
    assert len(FILES) >= 10


def test_shipped_knowledge_validates_as_a_whole(shipped_load: LoadResult) -> None:
    assert shipped_load.ok, "\n".join(str(e) for e in shipped_load.errors)
    assert shipped_load.files == len(FILES)


@pytest.mark.parametrize("path", FILES, ids=FILE_IDS)
def test_knowledge_file_has_no_validation_errors(path: Path, shipped_load: LoadResult) -> None:
    errors = [str(e) for e in shipped_load.errors if e.file == path.name]
    assert not errors, f"{path.name}:\n" + "\n".join(errors)
    if shipped_load.knowledge is not None:  # otherwise another file's errors are reported by its own test
        assert path.stem in shipped_load.knowledge.topics


@pytest.mark.parametrize("path", FILES, ids=FILE_IDS)
def test_every_passage_cites_an_http_source_and_a_date_not_in_the_future(path: Path) -> None:
    today = dt.date.today()
    problems = []
    for position, passage in enumerate(_raw_passages(path), 1):
        label = passage.get("id", f"#{position}")
        url = str((passage.get("source") or {}).get("url", ""))
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(f"{label}: source url {url!r} is not http(s)")
        date = passage.get("date")
        if isinstance(date, str):
            try:
                date = dt.date.fromisoformat(date)
            except ValueError:
                problems.append(f"{label}: date {date!r} is not ISO")
                continue
        if not isinstance(date, dt.date):
            problems.append(f"{label}: date {date!r} is missing")
        elif date > today:
            problems.append(f"{label}: date {date} is in the future")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", FILES, ids=FILE_IDS)
def test_knowledge_file_has_no_duplicate_keys_anchors_or_aliases(path: Path) -> None:
    try:
        load_yaml(path.read_text(encoding="utf-8"))
    except StrictYamlError as problem:
        pytest.fail(f"{path.name}: {problem}")


def test_shipped_passages_citing_reposts_stay_under_ten_percent() -> None:
    """A repost is a passage marked `source.repost: true` or citing a known repost site, marked or not."""
    passages = [p for path in FILES for p in _readable_passages(path)]
    reposts = [
        str(p.get("id")) for p in passages
        if (p.get("source") or {}).get("repost") is True or is_aggregator(str((p.get("source") or {}).get("url", "")))
    ]
    share = len(reposts) / len(passages)
    assert share < REPOST_SHARE_LIMIT, f"{len(reposts)} of {len(passages)} passages ({share:.1%}) cite a repost"


def test_shipped_knowledge_has_supersedes_storylines() -> None:
    assert HEADS, "no supersedes storylines found in the shipped knowledge"


@pytest.fixture(scope="module")
def head_answers(shipped_engine: Engine) -> dict[str, Answer]:
    """Every storyline head's title asked at once (one encoder call)."""
    answers = shipped_engine.answer_many([question_from_title(title) for _, title in HEADS])
    return {pid: answer for (pid, _), answer in zip(HEADS, answers, strict=True)}


@pytest.mark.parametrize(("passage_id", "title"), HEADS, ids=[pid for pid, _ in HEADS])
def test_storyline_latest_passage_leads_the_answer_to_its_title(
    head_answers: dict[str, Answer], passage_id: str, title: str
) -> None:
    question = question_from_title(title)
    answer = head_answers[passage_id]
    assert answer.question == question
    assert answer.answered, f"declined {question!r}; suggestions {answer.suggestions}"
    got = answer.passages[0].passage.id
    history = [p.id for p in answer.history]
    assert got == passage_id, f"asked {question!r}: led with {got}, history {history}"
    dates = [p.date for p in answer.history]
    assert dates == sorted(dates, reverse=True)
