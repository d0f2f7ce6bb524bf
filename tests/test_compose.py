"""Stage 4: which passage leads an answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.core.compose import _latest_if_close, definition_passage
from bot.core.models import Passage, Source
from bot.core.retrieval import Candidate
from bot.core.storylines import Storylines


def _passage(pid: str, kind: str, date: dt.date = dt.date(2025, 1, 1), supersedes: tuple[str, ...] = ()) -> Passage:
    source = Source("Example News", "A headline", "https://example.org/a")
    return Passage(pid, "Title", "Text.", date, source, "topic", Path("topic.yaml"), kind=kind, supersedes=supersedes)


def _candidate(row: int, kind: str, score: float, dense: float) -> Candidate:
    return Candidate(row, _passage(f"p{row}", kind), score, dense)


def _storyline(first_kind: str) -> tuple[Storylines, Passage, Passage]:
    """An older position of ``first_kind`` and the event that superseded it a year later."""
    older = _passage("older", first_kind, dt.date(2024, 9, 1))
    newer = _passage("newer", "event", dt.date(2025, 9, 1), supersedes=("older",))
    return Storylines({"older": older, "newer": newer}), older, newer


def test_a_definition_leads_with_the_near_tied_background_closest_in_meaning() -> None:
    candidates = [_candidate(0, "event", 0.0732, 0.57), _candidate(1, "background", 0.0731, 0.56),
                  _candidate(2, "background", 0.0725, 0.62)]
    chosen = definition_passage(candidates)
    assert chosen is not None and chosen.id == "p2"


def test_a_definition_without_a_background_near_the_top_has_no_definition_passage() -> None:
    candidates = [_candidate(0, "event", 0.10, 0.7), _candidate(1, "plan", 0.09, 0.6),
                  _candidate(2, "event", 0.08, 0.5), _candidate(3, "background", 0.07, 0.9)]
    assert definition_passage(candidates) is None


def test_a_past_question_best_matching_an_outdated_plan_leads_with_what_happened_since() -> None:
    storylines, older, newer = _storyline("plan")
    candidates = [Candidate(0, older, 1.0, 0.8), Candidate(1, newer, 0.5, 0.4)]  # far below the near-tie share
    assert _latest_if_close(candidates[0], candidates, storylines).id == "newer"


def test_a_past_question_best_matching_an_event_keeps_that_event_unless_the_latest_is_close() -> None:
    storylines, older, newer = _storyline("event")
    candidates = [Candidate(0, older, 1.0, 0.8), Candidate(1, newer, 0.5, 0.4)]
    assert _latest_if_close(candidates[0], candidates, storylines).id == "older"
    close = [Candidate(0, older, 1.0, 0.8), Candidate(1, newer, 0.95, 0.7)]
    assert _latest_if_close(close[0], close, storylines).id == "newer"
