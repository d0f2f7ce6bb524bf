"""The tables, as SQLAlchemy 2 ORM classes. Alembic's migrations (``migrations/versions``) create them.

Every type here is portable: SQLite and PostgreSQL get the same schema from the same migration.
Discord ids are 64-bit integers (``BigInteger``); lists are ``JSON``; times are stored in UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names follow one convention, so migrations can refer to them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on both backends (SQLite keeps no zone: store naive UTC, read back aware)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (datetime.now(UTC))")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class FeedbackRow(Base):
    """One vote on one answer message by one reporter; a new vote by the same reporter replaces it."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("message_id", "reporter_hash", name="uq_feedback_message_reporter"),
        Index("ix_feedback_status_created", "status", "created_at"),
        Index("ix_feedback_reporter_hash", "reporter_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(BigInteger)
    question: Mapped[str | None] = mapped_column(Text)  # None once retention has deleted it
    lead_passage_id: Mapped[str | None] = mapped_column(String(200))
    passage_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    kb_version: Mapped[str] = mapped_column(String(100))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_link: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reporter_hash: Mapped[str | None] = mapped_column(String(64))  # None once retention anonymised it
    vote: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    resolution_note: Mapped[str | None] = mapped_column(Text)
    fixed_in: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class GapRow(Base):
    """A question the bot could not answer well: declined as not covered, or answered with low confidence."""

    __tablename__ = "gaps"
    __table_args__ = (Index("ix_gaps_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question: Mapped[str | None] = mapped_column(Text)  # None once retention has deleted it
    purged: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(20))  # not_covered | low_confidence
    confidence: Mapped[float | None] = mapped_column(Float)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32, little-endian; None once purged


class QuestionCountRow(Base):
    """How many questions had each outcome, per day, guild (0: none) and lead topic ('' : none)."""

    __tablename__ = "question_counts"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class GuildSettingsRow(Base):
    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    answer_mentions: Mapped[str] = mapped_column(String(10), default="all")  # all | listed | none
    mention_channel_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    ephemeral_default: Mapped[bool] = mapped_column(Boolean, default=False)
    moderator_role_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    feedback_buttons: Mapped[bool] = mapped_column(Boolean, default=True)
    log_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    # In a thread started from a bot answer, answer every message, not only those that mention the bot.
    answer_every_thread_message: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SettingRow(Base):
    """Installation-wide values the bot keeps for itself (the generated hash secret)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class HeartbeatRow(Base):
    """One running bot process: what it serves and when it last said so."""

    __tablename__ = "heartbeats"

    process_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    shard_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    kb_version: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PublishedKnowledgeRow(Base):
    """A knowledge base one process validated and published for every other (PostgreSQL): its file texts."""

    __tablename__ = "published_knowledge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # the newest is the latest
    kb_version: Mapped[str] = mapped_column(String(100))
    files: Mapped[dict[str, str]] = mapped_column(JSON)  # file name -> text
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    published_by: Mapped[str] = mapped_column(String(200))  # the publishing process's heartbeat id
