"""What the shells record about each answer: a count for every question, a gap for the ones it could not answer.

``AnswerRecorder.observe(answer, guild_id)`` is all a shell calls after answering: it queues the
writes and returns at once (the question's vector, for grouping gaps, is computed in the background
write too). Counts are added up and gaps collected in memory, and one queued write stores everything
observed until it runs, in one transaction: under load, one transaction for many answers instead of
one or two per answer (the storage bench measured each transaction's cost on the answers being
computed meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import numpy as np

from bot.core.models import Answer
from bot.storage.errors import describe
from bot.storage.queue import WriteQueue
from bot.storage.records import CountKey, GapReason, NewGap, Outcome
from bot.storage.storage import Storage

log = logging.getLogger(__name__)

Vectorize = Callable[[str], Awaitable[Sequence[float] | np.ndarray | None]]


class QuestionVectors(Protocol):
    """What gives a question's vector: the engine, which reuses the one its answer path computed."""

    def question_vector(self, question: str) -> np.ndarray: ...


PendingGap = tuple[Answer, int | None, GapReason]  # the answer, its guild id, why it is a gap
# A queued write waits this long before taking its batch: answers asked one after another share a
# transaction instead of each paying one while the next is being computed.
COALESCE_SECONDS = 0.25
TopicTitle = Callable[[str], str]
# Declines that are only counted: their texts are not worth keeping (greetings, other subjects, bare follow-ups).
COUNTED_ONLY = ("not_a_question", "out_of_scope", "not_understood")


def outcome_of(answer: Answer) -> Outcome:
    return "answered" if answer.answered else (answer.decline_reason or "not_covered")


def gap_reason(answer: Answer, low_confidence: float) -> GapReason | None:
    """``not_covered`` declines and answers below ``low_confidence`` are gaps; every other answer is not."""
    if answer.decline_reason == "not_covered":
        return "not_covered"
    if answer.answered and answer.confidence < low_confidence:
        return "low_confidence"
    return None


def gap_topics(answer: Answer, topic_title: TopicTitle | None = None) -> tuple[str, ...]:
    """The nearest topics: a decline's suggestions (topic titles), or the titles of an answer's passages' topics."""
    if not answer.answered:
        return tuple(answer.suggestions)
    slugs = dict.fromkeys(ranked.passage.topic for ranked in answer.passages)
    return tuple(topic_title(slug) if topic_title else slug for slug in slugs)


class AnswerRecorder:
    """Records every answer through a :class:`WriteQueue`: ``observe`` neither waits nor raises."""

    def __init__(
        self, storage: Storage, queue: WriteQueue, *, low_confidence: float | None = None,
        vectorize: Vectorize | None = None, topic_title: TopicTitle | None = None, coalesce: float = COALESCE_SECONDS,
    ) -> None:
        self._storage = storage
        self._queue = queue
        self._coalesce = coalesce
        self._low_confidence = _threshold(storage, low_confidence)
        self._vectorize = vectorize
        self._topic_title = topic_title
        self._counts: Counter[CountKey] = Counter()  # not yet taken by a queued write
        self._gaps: list[PendingGap] = []
        self._queued = False

    def observe(self, answer: Answer, guild_id: int | None) -> None:
        try:
            self._counts[(outcome_of(answer), guild_id, _lead_topic(answer))] += 1
            reason = gap_reason(answer, self._low_confidence)
            if reason is not None:
                self._gaps.append((answer, guild_id, reason))
            if not self._queued:  # else the queued write takes this answer too
                self._queued = self._queue.submit("answer records", self._write())
        except Exception:  # recording must never cost the user the answer
            log.exception("could not queue the answer's records")

    def _write(self) -> Callable[[], Awaitable[None]]:
        """One write of every answer observed until it runs; a retry writes the same batch (the failed
        transaction wrote nothing), its vectors computed once."""
        taken: tuple[Counter[CountKey], list[NewGap]] | None = None

        async def write() -> None:
            nonlocal taken
            if taken is None:
                await asyncio.sleep(self._coalesce)
                counts, pending = self._counts, self._gaps
                self._counts, self._gaps, self._queued = Counter(), [], False
                taken = counts, [await self._new_gap(*gap) for gap in pending]
            await self._storage.record_answers(*taken)

        return write

    async def _new_gap(self, answer: Answer, guild_id: int | None, reason: GapReason) -> NewGap:
        return NewGap(
            answer.question, reason, guild_id=guild_id, topics=gap_topics(answer, self._topic_title),
            vector=await _vector(answer.question, self._vectorize), confidence=answer.confidence,
        )


def vectorize_with(engine: Callable[[], QuestionVectors | None]) -> Vectorize:
    """Gaps' vectors from the current engine (``engine()``, None while there is none), computed off the
    event loop: the shells' ``vectorize``."""

    async def vectorize(question: str) -> np.ndarray | None:
        current = engine()
        if current is None:
            return None
        return await asyncio.to_thread(current.question_vector, question)

    return vectorize


def _lead_topic(answer: Answer) -> str | None:
    return answer.passages[0].passage.topic if answer.answered and answer.passages else None


def _threshold(storage: Storage, low_confidence: float | None) -> float:
    return storage.settings.gap_confidence if low_confidence is None else low_confidence


async def _vector(question: str, vectorize: Vectorize | None) -> Sequence[float] | np.ndarray | None:
    """The question's vector, or None (the gap is then grouped by its words only)."""
    if vectorize is None:
        return None
    try:
        return await vectorize(question)
    except Exception as exc:  # an encoder failure must not lose the gap itself
        log.warning("could not encode a gap question for grouping: %s", describe(exc))
        return None
