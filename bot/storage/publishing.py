"""Published knowledge: the validated knowledge files of one process's ``/kb reload``, for every other process.

The newest row (highest id) is the current publication. On PostgreSQL publishing also sends a
notification on :data:`KNOWLEDGE_CHANNEL` (delivered when the transaction commits) whose payload
is the new ``kb_version``; listeners then fetch the files. Only the newest :data:`KEEP_PUBLICATIONS`
rows are kept: a publication holds every file's text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.schema import PublishedKnowledgeRow

KNOWLEDGE_CHANNEL = "spacebot_knowledge"
KEEP_PUBLICATIONS = 5


@dataclass(frozen=True)
class PublicationInfo:
    """What a publication is, without its files (cheap to read every poll)."""

    id: int
    kb_version: str
    published_at: dt.datetime
    published_by: str


@dataclass(frozen=True)
class Publication(PublicationInfo):
    files: Mapping[str, str] = field(default_factory=dict)  # file name -> text


def _info(row: PublishedKnowledgeRow) -> PublicationInfo:
    return PublicationInfo(row.id, row.kb_version, row.published_at, row.published_by)


async def publish(
    session: AsyncSession, kb_version: str, files: Mapping[str, str], *, by: str, now: dt.datetime
) -> PublicationInfo:
    """Store a publication, drop the oldest beyond the ones kept, and notify listeners (PostgreSQL)."""
    row = PublishedKnowledgeRow(kb_version=kb_version, files=dict(files), published_at=now, published_by=by)
    session.add(row)
    await session.flush()
    kept = select(PublishedKnowledgeRow.id).order_by(PublishedKnowledgeRow.id.desc()).limit(KEEP_PUBLICATIONS)
    await session.execute(delete(PublishedKnowledgeRow).where(PublishedKnowledgeRow.id.not_in(kept.scalar_subquery())))
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, :payload)"),
                              {"channel": KNOWLEDGE_CHANNEL, "payload": kb_version})
    return _info(row)


async def latest(session: AsyncSession) -> PublicationInfo | None:
    newest = select(func.max(PublishedKnowledgeRow.id)).scalar_subquery()
    row = (await session.execute(
        select(PublishedKnowledgeRow.id, PublishedKnowledgeRow.kb_version, PublishedKnowledgeRow.published_at,
               PublishedKnowledgeRow.published_by).where(PublishedKnowledgeRow.id == newest)
    )).one_or_none()
    return PublicationInfo(row.id, row.kb_version, row.published_at, row.published_by) if row else None


async def fetch(session: AsyncSession, publication_id: int) -> Publication | None:
    row = await session.get(PublishedKnowledgeRow, publication_id)
    if row is None:
        return None
    return Publication(row.id, row.kb_version, row.published_at, row.published_by, files=dict(row.files))
