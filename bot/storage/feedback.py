"""Feedback reports: one vote per reporter per answer message, the moderators' review queue, forgetting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.errors import FeedbackNotFoundError
from bot.storage.records import (
    REPORT_STATUSES,
    FeedbackReport,
    FeedbackVote,
    ReportStatus,
    VoteKind,
    VoteResult,
)
from bot.storage.schema import FeedbackRow


def to_report(row: FeedbackRow) -> FeedbackReport:
    return FeedbackReport(
        id=row.id, message_id=row.message_id, question=row.question, lead_passage_id=row.lead_passage_id,
        passage_ids=tuple(row.passage_ids or ()), kb_version=row.kb_version, guild_id=row.guild_id,
        channel_id=row.channel_id, message_link=row.message_link, created_at=row.created_at,
        vote=row.vote,  # type: ignore[arg-type]
        note=row.note, status=row.status,  # type: ignore[arg-type]
        resolution_note=row.resolution_note, fixed_in=row.fixed_in, resolved_at=row.resolved_at,
    )


async def record_vote(session: AsyncSession, vote: FeedbackVote, reporter_hash: str, now: dt.datetime) -> VoteResult:
    """Insert the vote, or replace this reporter's earlier vote on the same message.

    A changed vote is a new report (open again, its resolution cleared); the same vote again only
    updates the note, so clicking twice does not reopen a report a moderator has dismissed.
    """
    row = await session.scalar(
        select(FeedbackRow).where(FeedbackRow.message_id == vote.message_id,
                                  FeedbackRow.reporter_hash == reporter_hash)
    )
    previous: VoteKind | None = None
    if row is None:
        row = FeedbackRow(message_id=vote.message_id, reporter_hash=reporter_hash, status="open", created_at=now)
        session.add(row)
    else:
        previous = row.vote  # type: ignore[assignment]
    if previous != vote.vote:
        row.created_at, row.status = now, "open"
        row.resolution_note = row.fixed_in = row.resolved_at = None
        row.note = vote.note
    elif vote.note is not None:
        row.note = vote.note
    row.vote = vote.vote
    row.question, row.lead_passage_id, row.passage_ids = vote.question, vote.lead_passage_id, list(vote.passage_ids)
    row.kb_version, row.guild_id, row.channel_id = vote.kb_version, vote.guild_id, vote.channel_id
    row.message_link = vote.message_link
    await session.flush()  # assigns the id; a concurrent insert of the same vote fails here and is retried
    return VoteResult(report=to_report(row), previous_vote=previous)


def _filtered(
    status: ReportStatus | None, kinds: Sequence[VoteKind], guild_id: int | None
) -> Select[tuple[FeedbackRow]]:
    query = select(FeedbackRow).where(FeedbackRow.vote.in_(list(kinds)))
    if status is not None:
        query = query.where(FeedbackRow.status == status)
    if guild_id is not None:
        query = query.where(FeedbackRow.guild_id == guild_id)
    return query


async def list_reports(
    session: AsyncSession, *, status: ReportStatus | None, kinds: Sequence[VoteKind], limit: int, offset: int,
    guild_id: int | None,
) -> list[FeedbackReport]:
    query = _filtered(status, kinds, guild_id).order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc())
    rows = await session.scalars(query.limit(limit).offset(offset))
    return [to_report(row) for row in rows]


async def count_reports(
    session: AsyncSession, status: ReportStatus | None, kinds: Sequence[VoteKind], guild_id: int | None
) -> int:
    subquery = _filtered(status, kinds, guild_id).subquery()
    return int(await session.scalar(select(func.count()).select_from(subquery)) or 0)


async def get_report(session: AsyncSession, report_id: int) -> FeedbackReport | None:
    row = await session.get(FeedbackRow, report_id)
    return to_report(row) if row else None


async def resolve(
    session: AsyncSession, report_id: int, *, status: ReportStatus, note: str | None, fixed_in: str | None,
    now: dt.datetime,
) -> FeedbackReport:
    if status not in REPORT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(REPORT_STATUSES)}, not {status!r}")
    row = await session.get(FeedbackRow, report_id)
    if row is None:
        raise FeedbackNotFoundError(report_id)
    row.status = status
    row.resolution_note = note
    row.fixed_in = fixed_in if status == "resolved" else None
    row.resolved_at = None if status == "open" else now
    await session.flush()
    return to_report(row)


async def delete_by_reporter(session: AsyncSession, reporter_hash: str) -> int:
    result = await session.execute(delete(FeedbackRow).where(FeedbackRow.reporter_hash == reporter_hash))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_by_reporter(session: AsyncSession, reporter_hash: str) -> int:
    query = select(func.count()).select_from(FeedbackRow).where(FeedbackRow.reporter_hash == reporter_hash)
    return int(await session.scalar(query) or 0)

