"""Stage 4, composition: pick the lead passage by date and question type, gather its dated history.

Nothing here generates text: the lead is the chosen passage's own sentences, verbatim. Declines are
composed in :mod:`bot.core.declines`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.judge import Verdict
from bot.core.models import Answer, Passage, RankedPassage
from bot.core.retrieval import Candidate, Retriever, matches_time
from bot.core.snapshot import Snapshot
from bot.core.storylines import Storylines
from bot.core.text import TimeReference
from bot.core.understand import Query

# Cosine similarity between two passages' vectors above which they are taken to state one subject
# at different dates, even without an explicit `supersedes` link.
SAME_SUBJECT = 0.85
# A newer same-subject passage may take the lead only if it scored at least this share of the best.
SAME_SUBJECT_MIN_SHARE = 0.75
# A past-tense question still leads with the storyline's latest position when that scores at least
# this share of the best match (the question fits both: "did NASA cancel the Gateway?").
PAST_LATEST_MIN_SHARE = 0.9
# A past-tense question whose best match is a plan or proposal that a newer position has replaced leads
# with that position: an old plan never says what happened ("when did Artemis II fly?").
OUTDATED_PLAN_KINDS = frozenset({"plan", "proposal"})
# "What is X?" leads with a background passage among the first results scoring at least this share of
# the best (fitted on the tuning questions).
DEFINITION_MIN_SHARE = 0.6
# A question about the present leads with a newer current position from the first results when it
# scores at least this share of the best (fitted on the tuning questions).
NEAR_TIE_MIN_SHARE = 0.97
NEAR_TIE_WINDOW = 3
DEFINITION_WINDOW = 3
# Any other question leads with a dated position over a background passage scoring within this share.
BACKGROUND_YIELD = 0.9
_NEWS = re.compile(
    r"\b(?:when|how many|how much|how long|who|whom|which|latest|current(?:ly)?|now|status|still|will|did|has|have|"
    r"had|was|were|date|cost|costs|budget|money|plan|plans|schedule|happen(?:ed|s)?|next|last|yet|anymore|"
    r"(?:19|20)\d\d)\b",
    re.IGNORECASE,
)


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
    *,
    forced: Passage | None = None,
) -> Decision:
    """The passage to lead with.

    A question about the present leads with the latest position on the best passage's storyline; a
    question about a given time leads with the position that stood then; a question about a past
    event ("when did India sign?") leads with the passage that matches it, followed by the latest.
    ``forced`` (a definition, or the current position a premise correction comes from) wins.
    """
    best = candidates[0]
    if forced is not None:
        lead_passage = forced
    elif time is not None:
        lead_passage = _position_at(best.passage, storylines, time)
    elif past:
        lead_passage = _latest_if_close(best, candidates, storylines)
    else:
        lead_passage = storylines.latest(best.passage)
        if lead_passage.id == best.passage.id:
            lead_passage = (_newer_same_subject(best, candidates, retriever)
                            or _newer_near_tie(best, candidates, storylines) or lead_passage)
    history = storylines.history(lead_passage)
    best_is_older = best.passage.date <= lead_passage.date
    replaced_on_its_topic = best.passage.topic == lead_passage.topic and lead_passage.id != best.passage.id
    if replaced_on_its_topic and best_is_older and best.passage.id not in {p.id for p in history}:
        history = sorted([best.passage, *history], key=lambda p: (p.date, p.id), reverse=True)
    shown_next = (best.passage, storylines.latest(best.passage), storylines.latest(lead_passage))
    related = {p.id: p for p in shown_next if p.id != lead_passage.id}
    lead = Candidate(retriever.row_of[lead_passage.id], lead_passage,
                     max(best.score, _score_of(lead_passage, candidates)), _dense_of(lead_passage, candidates, best))
    return Decision(lead, [p for p in history if p.id != lead_passage.id], list(related.values()))


def _latest_if_close(best: Candidate, candidates: Sequence[Candidate], storylines: Storylines) -> Passage:
    """For a past-tense question, the storyline's latest position when it matches about as well as the best,
    or when the best is a plan or proposal it has since replaced."""
    latest = storylines.latest(best.passage)
    if latest.id == best.passage.id:
        return best.passage
    if best.passage.kind in OUTDATED_PLAN_KINDS and latest.date > best.passage.date:
        return latest
    if _score_of(latest, candidates[:3]) >= PAST_LATEST_MIN_SHARE * best.score:
        return latest
    return best.passage


def _score_of(passage: Passage, candidates: Sequence[Candidate]) -> float:
    return next((c.score for c in candidates if c.passage.id == passage.id), 0.0)


def _dense_of(passage: Passage, candidates: Sequence[Candidate], best: Candidate) -> float:
    return next((c.dense for c in candidates if c.passage.id == passage.id), best.dense)


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


def _newer_near_tie(best: Candidate, candidates: Sequence[Candidate], storylines: Storylines) -> Passage | None:
    """For a question about the present: the newest current position among results that match about as
    well as the best ("when is Russia leaving?" fits a 2023 ISS-lifetime passage and Russia's 2026 one)."""
    heads = [
        storylines.latest(c.passage) for c in candidates[1:NEAR_TIE_WINDOW]
        if c.score >= NEAR_TIE_MIN_SHARE * best.score and c.passage.kind != "background"
    ]
    newer = [p for p in heads if p.date > best.passage.date]
    return max(newer, key=lambda p: (p.date, p.id)) if newer else None


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


def asks_for_news(question: str) -> bool:
    """A question about a date, an amount, a person, a state or a change, not about what a thing is."""
    return bool(_NEWS.search(question))


def news_before_background(candidates: Sequence[Candidate]) -> Sequence[Candidate]:
    """A question that is not "what is X?" is about a position or an event: a background passage at the
    top yields to the first dated position scoring at least BACKGROUND_YIELD of it."""
    if not candidates or candidates[0].passage.kind != "background":
        return candidates
    best = candidates[0].score
    for i, candidate in enumerate(candidates[1:DEFINITION_WINDOW], start=1):
        if candidate.passage.kind != "background" and candidate.score >= BACKGROUND_YIELD * best:
            return [candidate, *candidates[:i], *candidates[i + 1:]]
    return candidates


def definition_passage(candidates: Sequence[Candidate]) -> Passage | None:
    """For "what is X?": the best background passage near the top of the results, if one scores well."""
    best = candidates[0].score
    backgrounds = [c for c in candidates[:DEFINITION_WINDOW]
                   if c.passage.kind == "background" and c.score >= DEFINITION_MIN_SHARE * best]
    # fused ranks nearly tie on a short question; the closest in meaning is the one that says what X is
    return max(backgrounds, key=lambda c: c.dense).passage if backgrounds else None


def compose_answer(
    query: Query, verdict: Verdict, candidates: Sequence[Candidate], snapshot: Snapshot, k: int
) -> Answer:
    """The answer: the lead passage verbatim, the related positions, the dated history."""
    forced = verdict.premise_passage
    if forced is not None and forced.kind == "background":  # the correction is general: lead with the news
        forced = snapshot.storylines.latest(candidates[0].passage)
    if forced is None and query.kind == "definition":
        forced = definition_passage(candidates)
    elif forced is None and asks_for_news(query.asked):
        candidates = news_before_background(candidates)
    decision = choose_lead(candidates, snapshot.retriever, snapshot.storylines, query.time, query.past, forced=forced)
    by_id = {c.passage.id: c for c in candidates}
    ranked = [RankedPassage(decision.lead.passage, decision.lead.score, decision.lead.dense)]
    ranked += [_ranked(p, by_id) for p in decision.related]
    shown = {r.passage.id for r in ranked}
    for candidate in candidates:
        if len(ranked) >= k:
            break
        if candidate.passage.id not in shown:
            ranked.append(RankedPassage(candidate.passage, candidate.score, candidate.dense))
            shown.add(candidate.passage.id)
    return Answer(
        question=query.asked, answered=True, lead=decision.lead.passage.text, passages=tuple(ranked[:k]),
        history=tuple(decision.history), suggestions=(), kb_version=snapshot.version,
        confidence=verdict.confidence, premise=verdict.premise,
    )


def _ranked(passage: Passage, by_id: dict[str, Candidate]) -> RankedPassage:
    found = by_id.get(passage.id)
    return RankedPassage(passage, found.score if found else 0.0, found.dense if found else 0.0)
