"""The moderators' figures over a period: questions by outcome, votes, helpful rate, top topics and passages."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.gaps import NO_TOPIC
from bot.storage.records import REPORT_KINDS, Stats
from bot.storage.schema import FeedbackRow, GapRow, QuestionCountRow

TOP = 5


async def compute(session: AsyncSession, since: dt.datetime, guild_id: int | None) -> Stats:
    """Counters are per day, so questions count from ``since``'s day; votes and gaps from ``since`` itself."""
    counts = [QuestionCountRow.day >= since.date()]
    votes_since = [FeedbackRow.created_at >= since]
    gaps_since = [GapRow.created_at >= since]
    open_reports = [FeedbackRow.status == "open", FeedbackRow.vote.in_(REPORT_KINDS)]
    if guild_id is not None:
        counts.append(QuestionCountRow.guild_id == guild_id)
        votes_since.append(FeedbackRow.guild_id == guild_id)
        gaps_since.append(GapRow.guild_id == guild_id)
        open_reports.append(FeedbackRow.guild_id == guild_id)
    outcomes = await _outcome_counts(session, counts)
    votes = await _vote_counts(session, votes_since)
    total_votes = sum(votes.values())
    return Stats(
        since=since,
        questions=sum(outcomes.values()),
        answered=outcomes.pop("answered", 0),
        declined=dict(sorted(outcomes.items())),
        votes=dict(sorted(votes.items())),
        helpful_rate=votes.get("helpful", 0) / total_votes if total_votes else None,
        open_reports=int(await session.scalar(select(func.count(FeedbackRow.id)).where(*open_reports)) or 0),
        gaps=int(await session.scalar(select(func.count(GapRow.id)).where(*gaps_since)) or 0),
        top_topics=await _top_topics(session, counts),
        top_reported_passages=await _top_reported(session, votes_since),
    )


async def _outcome_counts(session: AsyncSession, where: list[ColumnElement[bool]]) -> dict[str, int]:
    query = select(QuestionCountRow.outcome, func.sum(QuestionCountRow.count)).where(*where)
    return {outcome: int(total) for outcome, total in await session.execute(query.group_by(QuestionCountRow.outcome))}


async def _vote_counts(session: AsyncSession, where: list[ColumnElement[bool]]) -> dict[str, int]:
    query = select(FeedbackRow.vote, func.count(FeedbackRow.id)).where(*where).group_by(FeedbackRow.vote)
    return {vote: int(n) for vote, n in await session.execute(query)}


async def _top_topics(session: AsyncSession, where: list[ColumnElement[bool]]) -> tuple[tuple[str, int], ...]:
    total = func.sum(QuestionCountRow.count).label("total")
    query = (
        select(QuestionCountRow.topic, total)
        .where(*where, QuestionCountRow.outcome == "answered", QuestionCountRow.topic != NO_TOPIC)
        .group_by(QuestionCountRow.topic)
        .order_by(total.desc(), QuestionCountRow.topic)
        .limit(TOP)
    )
    return tuple((topic, int(n)) for topic, n in await session.execute(query))


async def _top_reported(session: AsyncSession, where: list[ColumnElement[bool]]) -> tuple[tuple[str, int], ...]:
    reports = func.count(FeedbackRow.id).label("reports")
    query = (
        select(FeedbackRow.lead_passage_id, reports)
        .where(*where, FeedbackRow.vote.in_(REPORT_KINDS), FeedbackRow.lead_passage_id.is_not(None))
        .group_by(FeedbackRow.lead_passage_id)
        .order_by(reports.desc(), FeedbackRow.lead_passage_id)
        .limit(TOP)
    )
    return tuple((passage, int(n)) for passage, n in await session.execute(query))
