"""The gap queue and the question counters, and retention (texts deleted, counts kept)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.grouping import GapSample, vector_from_bytes, vector_to_bytes
from bot.storage.records import GAP_REASONS, OUTCOMES, GapReason, Outcome, PurgeReport
from bot.storage.schema import FeedbackRow, GapRow, QuestionCountRow

NO_GUILD = 0  # counters key on (day, guild, outcome, topic): "no guild" and "no topic" are values, not NULLs
NO_TOPIC = ""


async def add_gap(
    session: AsyncSession, question: str, *, guild_id: int | None, reason: GapReason, topics: Sequence[str],
    vector: Sequence[float] | np.ndarray | None, confidence: float | None, now: dt.datetime,
) -> int:
    if reason not in GAP_REASONS:
        raise ValueError(f"gap reason must be one of {', '.join(GAP_REASONS)}, not {reason!r}")
    row = GapRow(
        question=question, purged=False, created_at=now, guild_id=guild_id, reason=reason,
        confidence=confidence, topics=list(topics), vector=None if vector is None else vector_to_bytes(vector),
    )
    session.add(row)
    await session.flush()
    return row.id


async def add_count(
    session: AsyncSession, outcome: Outcome, *, guild_id: int | None, topic: str | None, day: dt.date, n: int
) -> None:
    """Add ``n`` to one counter: an UPDATE, or an INSERT when the counter is new (a concurrent INSERT of the
    same counter fails on the primary key and the caller retries, then updating)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    key = {"day": day, "guild_id": guild_id or NO_GUILD, "outcome": outcome, "topic": (topic or NO_TOPIC)[:100]}
    result = await session.execute(
        update(QuestionCountRow)
        .where(*(getattr(QuestionCountRow, column) == value for column, value in key.items()))
        .values(count=QuestionCountRow.count + n)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        session.add(QuestionCountRow(**key, count=n))
        await session.flush()


async def load_samples(
    session: AsyncSession, since: dt.datetime, max_questions: int, guild_id: int | None
) -> list[GapSample]:
    """The most recent gaps since ``since`` that still have their text (retention deletes it)."""
    query = select(GapRow).where(GapRow.created_at >= since, GapRow.question.is_not(None))
    if guild_id is not None:
        query = query.where(GapRow.guild_id == guild_id)
    query = query.order_by(GapRow.created_at.desc(), GapRow.id.desc()).limit(max_questions)
    return [
        GapSample(question=row.question or "", created_at=row.created_at, vector=vector_from_bytes(row.vector),
                  topics=tuple(row.topics or ()), reason=row.reason)
        for row in await session.scalars(query)
    ]


async def purge_texts(session: AsyncSession, cutoff: dt.datetime) -> PurgeReport:
    """Delete question texts (and what could rebuild them: vectors, notes, reporter hashes) older than cutoff.

    The rows stay, so every count (gaps per day, votes per kind, reported passages) is unchanged.
    """
    gaps = await session.execute(
        update(GapRow)
        .where(GapRow.created_at < cutoff, GapRow.purged.is_(False))
        .values(question=None, vector=None, purged=True)
    )
    reports = await session.execute(
        update(FeedbackRow)
        .where(
            FeedbackRow.created_at < cutoff,
            or_(FeedbackRow.question.is_not(None), FeedbackRow.note.is_not(None),
                FeedbackRow.reporter_hash.is_not(None)),
        )
        .values(question=None, note=None, reporter_hash=None)
    )
    return PurgeReport(gaps_purged=int(gaps.rowcount or 0),  # type: ignore[attr-defined]
                       reports_anonymised=int(reports.rowcount or 0))  # type: ignore[attr-defined]
