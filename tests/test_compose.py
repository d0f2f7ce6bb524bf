"""Stage 4: which passage leads an answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.core.compose import definition_passage
from bot.core.models import Passage, Source
from bot.core.retrieval import Candidate


def _candidate(row: int, kind: str, score: float, dense: float) -> Candidate:
    source = Source("Example News", "A headline", "https://example.org/a")
    passage = Passage(f"p{row}", "Title", "Text.", dt.date(2025, 1, 1), source, "topic", Path("topic.yaml"), kind=kind)
    return Candidate(row, passage, score, dense)


def test_a_definition_leads_with_the_near_tied_background_closest_in_meaning() -> None:
    candidates = [_candidate(0, "event", 0.0732, 0.57), _candidate(1, "background", 0.0731, 0.56),
                  _candidate(2, "background", 0.0725, 0.62)]
    chosen = definition_passage(candidates)
    assert chosen is not None and chosen.id == "p2"


def test_a_definition_without_a_background_near_the_top_has_no_definition_passage() -> None:
    candidates = [_candidate(0, "event", 0.10, 0.7), _candidate(1, "plan", 0.09, 0.6),
                  _candidate(2, "event", 0.08, 0.5), _candidate(3, "background", 0.07, 0.9)]
    assert definition_passage(candidates) is None
