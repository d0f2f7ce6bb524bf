"""Answer composition: pick the lead passage by date, gather its dated history, or decline.

Nothing here generates text: the lead is the best passage's own sentences, verbatim.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from bot.core.models import Answer, Passage, RankedPassage
from bot.core.retrieval import Candidate, Retriever, matches_time
from bot.core.text import TimeReference

# Cosine similarity between two passages' vectors above which they are taken to state one subject
# at different dates, even without an explicit `supersedes` link.
SAME_SUBJECT = 0.85
# A newer same-subject passage may take the lead only if it scored at least this share of the best.
SAME_SUBJECT_MIN_SHARE = 0.75
# A past-tense question still leads with the storyline's latest position when that scores at least
# this share of the best match (the question fits both: "did NASA cancel the Gateway?").
PAST_LATEST_MIN_SHARE = 0.9
MAX_SUGGESTIONS = 3


class Storylines:
    """The ``supersedes`` graph: for any passage, its latest successor and its dated history."""

    def __init__(self, passages: Mapping[str, Passage]) -> None:
        self._passages = passages
        self._successors: dict[str, list[str]] = defaultdict(list)
        for passage in passages.values():
            for earlier in passage.supersedes:
                self._successors[earlier].append(passage.id)

    def latest(self, passage: Passage) -> Passage:
        """Follow "superseded by" links to the newest position on the same storyline."""
        current, seen = passage, {passage.id}
        while successors := [s for s in self._successors.get(current.id, ()) if s not in seen]:
            current = max((self._passages[s] for s in successors), key=lambda p: (p.date, p.id))
            seen.add(current.id)
        return current

    def members(self, passage: Passage) -> list[Passage]:
        """Every passage connected to this one by ``supersedes`` links, either way."""
        found, frontier = {passage.id}, [passage.id]
        while frontier:
            node = frontier.pop()
            neighbours = [*self._passages[node].supersedes, *self._successors.get(node, ())]
            for other in neighbours:
                if other not in found and other in self._passages:
                    found.add(other)
                    frontier.append(other)
        return [self._passages[pid] for pid in found]

    def history(self, passage: Passage) -> list[Passage]:
        """The earlier positions this passage replaced, directly or through others, newest first."""
        found: dict[str, Passage] = {}
        frontier = list(passage.supersedes)
        while frontier:
            pid = frontier.pop()
            if pid in found or pid == passage.id or pid not in self._passages:
                continue
            found[pid] = self._passages[pid]
            frontier.extend(self._passages[pid].supersedes)
        return sorted(found.values(), key=lambda p: (p.date, p.id), reverse=True)


@dataclass(frozen=True)
class Decision:
    lead: Candidate
    history: list[Passage]
    related: list[Passage]  # shown right after the lead: the best match it replaced, or the newer position


def choose_lead(
    candidates: Sequence[Candidate],
    retriever: Retriever,
    storylines: Storylines,
    time: TimeReference | None,
    past: bool = False,
) -> Decision:
    """The passage to lead with.

    A question about the present leads with the latest position on the best passage's storyline; a
    question about a given time leads with the position that stood then; a question about a past
    event ("when did India sign?") leads with the passage that matches it, followed by the latest.
    """
    best = candidates[0]
    if time is not None:
        lead_passage = _position_at(best.passage, storylines, time)
    elif past:
        lead_passage = _latest_if_close(best, candidates, storylines)
    else:
        lead_passage = storylines.latest(best.passage)
        if lead_passage.id == best.passage.id:
            lead_passage = _newer_same_subject(best, candidates, retriever) or lead_passage
    history = storylines.history(lead_passage)
    best_is_older = best.passage.date <= lead_passage.date
    if lead_passage.id != best.passage.id and best_is_older and best.passage.id not in {p.id for p in history}:
        history = sorted([best.passage, *history], key=lambda p: (p.date, p.id), reverse=True)
    related = {p.id: p for p in (best.passage, storylines.latest(lead_passage)) if p.id != lead_passage.id}
    lead = Candidate(retriever.row_of[lead_passage.id], lead_passage,
                     max(best.score, _score_of(lead_passage, candidates)), best.dense)
    return Decision(lead, [p for p in history if p.id != lead_passage.id], list(related.values()))


def _latest_if_close(best: Candidate, candidates: Sequence[Candidate], storylines: Storylines) -> Passage:
    """For a past-tense question, the storyline's latest position when it matches about as well as the best."""
    latest = storylines.latest(best.passage)
    if latest.id != best.passage.id and _score_of(latest, candidates[:3]) >= PAST_LATEST_MIN_SHARE * best.score:
        return latest
    return best.passage


def _score_of(passage: Passage, candidates: Sequence[Candidate]) -> float:
    return next((c.score for c in candidates if c.passage.id == passage.id), 0.0)


def _position_at(passage: Passage, storylines: Storylines, time: TimeReference) -> Passage:
    """On the passage's storyline, the position that stood at the asked time."""
    members = storylines.members(passage)
    in_period = [p for p in members if matches_time(p, time)]
    if in_period:
        return max(in_period, key=lambda p: (p.date, p.id))
    month = time.month or 12
    period_end = dt.date(time.year, month, calendar.monthrange(time.year, month)[1])
    standing = [p for p in members if p.date <= period_end]
    return max(standing, key=lambda p: (p.date, p.id)) if standing else passage


def _newer_same_subject(best: Candidate, candidates: Sequence[Candidate], retriever: Retriever) -> Passage | None:
    """A newer passage in the top results that states the same subject as the best one."""
    newer = [
        c.passage for c in candidates[1:3]
        if c.passage.topic == best.passage.topic
        and c.passage.date > best.passage.date
        and c.score >= SAME_SUBJECT_MIN_SHARE * best.score
        and retriever.similarity(c.passage, best.passage) >= SAME_SUBJECT
    ]
    return max(newer, key=lambda p: (p.date, p.id)) if newer else None


def compose_answer(
    question: str,
    candidates: Sequence[Candidate],
    *,
    k: int,
    answered: bool,
    retriever: Retriever,
    storylines: Storylines,
    time: TimeReference | None,
    past: bool = False,
    kb_version: str,
    suggestion_pool: Sequence[str],
) -> Answer:
    if not answered or not candidates:
        return Answer(
            question=question, answered=False, lead="", passages=(), history=(),
            suggestions=tuple(suggest(question, candidates, suggestion_pool)), kb_version=kb_version,
        )
    decision = choose_lead(candidates, retriever, storylines, time, past)
    scores = {c.passage.id: c.score for c in candidates}
    ranked = [RankedPassage(decision.lead.passage, decision.lead.score)]
    ranked += [RankedPassage(p, scores.get(p.id, 0.0)) for p in decision.related]
    shown = {r.passage.id for r in ranked}
    for candidate in candidates:
        if len(ranked) >= k:
            break
        if candidate.passage.id not in shown:
            ranked.append(RankedPassage(candidate.passage, candidate.score))
            shown.add(candidate.passage.id)
    return Answer(
        question=question, answered=True, lead=decision.lead.passage.text, passages=tuple(ranked[:k]),
        history=tuple(decision.history), suggestions=(), kb_version=kb_version,
    )


def suggest(question: str, candidates: Sequence[Candidate], pool: Sequence[str]) -> list[str]:
    """Up to three "did you mean" entries: the nearest passage titles, then fuzzy topic matches."""
    suggestions: list[str] = []
    for candidate in candidates:
        if candidate.passage.title not in suggestions:
            suggestions.append(candidate.passage.title)
        if len(suggestions) >= MAX_SUGGESTIONS:
            return suggestions
    if question.strip() and pool:
        for label, _, _ in process.extract(question, pool, scorer=fuzz.WRatio, limit=MAX_SUGGESTIONS):
            if label not in suggestions:
                suggestions.append(label)
    return suggestions[:MAX_SUGGESTIONS]
