"""``Storage``: the async API the shells use for feedback, gaps, counters, settings and heartbeats.

Nothing here is on the answer path: the Discord shell awaits only a user's own click (feedback,
settings) and hands everything else to a :class:`~bot.storage.queue.WriteQueue`. Every operation is
bounded by ``SPACEBOT_DATABASE_TIMEOUT`` and fails with :class:`StorageUnavailableError`, never with a
driver's exception. Constructing a ``Storage`` does no I/O; the first operation (or :meth:`open`)
connects and upgrades the schema to the newest migration, and a failed start is retried by the next
operation, so a bot started while its database is down picks it up when it comes back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, TypeVar

import numpy as np
from alembic.util import CommandError
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage import feedback, gaps, guilds, publishing, stats
from bot.storage.config import StorageSettings
from bot.storage.database import create_engine, is_sqlite, prepare_sqlite_folder, safe_url, upgrade
from bot.storage.errors import StorageError, StorageUnavailableError, describe
from bot.storage.grouping import DEFAULT_THRESHOLD, group_gaps
from bot.storage.publishing import Publication, PublicationInfo
from bot.storage.records import (
    REPORT_KINDS,
    CountKey,
    FeedbackReport,
    FeedbackVote,
    GapGroup,
    GapReason,
    GuildSettings,
    Heartbeat,
    NewGap,
    Outcome,
    PurgeReport,
    ReportStatus,
    Stats,
    VoteKind,
    VoteResult,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], dt.datetime]
# What opening can fail with: the network or file system, the database, a timeout, or Alembic (a database
# at a revision this code does not know, i.e. upgraded by a newer version of the bot).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError, StorageError, CommandError)
ATTEMPTS_ON_CONFLICT = 3  # a concurrent writer inserted the same key first: the next attempt updates it
MIGRATION_TIMEOUT_FACTOR = 6


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Storage:
    def __init__(self, settings: StorageSettings | None = None, *, clock: Clock = utc_now) -> None:
        self.settings = settings or StorageSettings()
        self._clock = clock
        self._engine = create_engine(self.settings.database_url)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        self._timeout = self.settings.database_timeout
        self._secret: bytes | None = None
        self._ready_lock = asyncio.Lock()
        # SQLite lets one transaction write at a time (every one here begins IMMEDIATE) and its busy handler is
        # not fair: with a dozen concurrent clicks, one could wait past the timeout and be lost (the storage
        # bench measured it). Within a process they take turns on a FIFO lock instead; other processes still
        # wait on busy_timeout. One lock per event loop, like the upgrade lock.
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] | None = (
            weakref.WeakKeyDictionary() if is_sqlite(self.settings.database_url) else None
        )

    @classmethod
    async def open(cls, settings: StorageSettings | None = None, *, clock: Clock = utc_now) -> Storage:
        """A storage that is connected and at the newest schema (raises StorageUnavailableError if not)."""
        storage = cls(settings, clock=clock)
        try:
            await storage.ensure_ready()
        except StorageError:
            await storage.close()
            raise
        return storage

    @property
    def url(self) -> str:
        """The database URL with its password masked: safe to log and print."""
        return safe_url(self.settings.database_url)

    async def __aenter__(self) -> Storage:
        await self.ensure_ready()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._engine.dispose()

    async def ensure_ready(self) -> None:
        """Create the SQLite folder, upgrade the schema to head, load the hash secret: once, until it works."""
        if self._secret is not None:
            return
        async with self._ready_lock:
            if self._secret is not None:
                return
            try:
                async with asyncio.timeout(self._timeout * MIGRATION_TIMEOUT_FACTOR):
                    prepare_sqlite_folder(self.settings.database_url)
                    await upgrade(self._engine)
                    secret = await self._attempt(self._load_secret, "read the hash secret")
            except DATABASE_ERRORS as exc:
                raise StorageUnavailableError(f"database {self.url} unavailable: {describe(exc)}") from exc
            self._secret = secret.encode()

    async def _load_secret(self, session: AsyncSession) -> str:
        configured = self.settings.hash_secret
        if configured is not None and configured.get_secret_value():
            return configured.get_secret_value()
        return await guilds.stored_secret(session, secrets.token_hex(32))

    async def _attempt(self, operation: Callable[[AsyncSession], Awaitable[T]], what: str) -> T:
        for attempt in range(1, ATTEMPTS_ON_CONFLICT + 1):
            try:
                async with asyncio.timeout(self._timeout), self._turn(), self._sessions.begin() as session:
                    return await operation(session)
            except IntegrityError as exc:
                if attempt == ATTEMPTS_ON_CONFLICT:
                    raise StorageError(f"could not {what}: {describe(exc)}") from exc
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                raise StorageUnavailableError(f"could not {what}: {describe(exc)}") from exc
        raise AssertionError("unreachable")

    def _turn(self) -> AbstractAsyncContextManager[object]:
        """This transaction's turn on SQLite (see ``_turns``); on PostgreSQL, nothing to wait for."""
        if self._turns is None:
            return nullcontext()
        return self._turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())

    async def _run(self, operation: Callable[[AsyncSession], Awaitable[T]], what: str) -> T:
        await self.ensure_ready()
        return await self._attempt(operation, what)

    def _now(self) -> dt.datetime:
        return self._clock()

    async def reporter_hash(self, user_id: int | str) -> str:
        """HMAC-SHA256 of the user id with this installation's secret: what is stored instead of the id."""
        await self.ensure_ready()
        assert self._secret is not None
        return hmac.new(self._secret, str(user_id).encode(), hashlib.sha256).hexdigest()

    # -- feedback --------------------------------------------------------------------------------

    async def record_feedback(self, vote: FeedbackVote) -> VoteResult:
        """Store a click (awaited by the shell: StorageUnavailableError means "not recorded")."""
        reporter = await self.reporter_hash(vote.user_id)
        now = self._now()
        return await self._run(lambda s: feedback.record_vote(s, vote, reporter, now), "record the feedback")

    async def list_feedback(
        self, status: ReportStatus | None = "open", limit: int = 25, offset: int = 0,
        kinds: Sequence[VoteKind] = REPORT_KINDS, guild_id: int | None = None,
    ) -> list[FeedbackReport]:
        """Reports newest first; ``status=None`` lists every status; helpful votes only if ``kinds`` says so."""
        return await self._run(
            lambda s: feedback.list_reports(
                s, status=status, kinds=kinds, limit=limit, offset=offset, guild_id=guild_id
            ), "list the feedback"
        )

    async def count_feedback(
        self, status: ReportStatus | None = "open", kinds: Sequence[VoteKind] = REPORT_KINDS,
        guild_id: int | None = None,
    ) -> int:
        return await self._run(lambda s: feedback.count_reports(s, status, kinds, guild_id), "count the feedback")

    async def get_feedback(self, report_id: int) -> FeedbackReport | None:
        return await self._run(lambda s: feedback.get_report(s, report_id), "read the report")

    async def resolve_feedback(
        self, report_id: int, status: ReportStatus = "resolved", note: str | None = None, fixed_in: str | None = None
    ) -> FeedbackReport:
        """Mark a report resolved (``fixed_in``: the kb_version with the fix), dismissed, or open again.

        Raises FeedbackNotFoundError for an unknown id."""
        now = self._now()
        return await self._run(
            lambda s: feedback.resolve(s, report_id, status=status, note=note, fixed_in=fixed_in, now=now),
            "resolve the report",
        )

    # -- gaps and counters -----------------------------------------------------------------------

    async def record_gap(
        self, question: str, reason: GapReason, *, guild_id: int | None = None, topics: Sequence[str] = (),
        vector: Sequence[float] | np.ndarray | None = None, confidence: float | None = None,
    ) -> int:
        """Store a question the bot could not answer well; ``vector`` (the encoder's) groups it with similar ones."""
        now = self._now()
        return await self._run(
            lambda s: gaps.add_gap(s, question, guild_id=guild_id, reason=reason, topics=topics, vector=vector,
                                   confidence=confidence, now=now),
            "record the gap",
        )

    async def record_answers(self, counts: Mapping[CountKey, int], new_gaps: Sequence[NewGap] = ()) -> None:
        """Add question counts and store gaps in one transaction: the recorder's batch of answers."""
        now = self._now()

        async def write(session: AsyncSession) -> None:
            for (outcome, guild_id, topic), n in counts.items():
                await gaps.add_count(session, outcome, guild_id=guild_id, topic=topic, day=now.date(), n=n)
            for gap in new_gaps:
                await gaps.add_gap(session, gap.question, guild_id=gap.guild_id, reason=gap.reason, topics=gap.topics,
                                   vector=gap.vector, confidence=gap.confidence, now=now)

        await self._run(write, "record the answers")

    async def count_question(
        self, outcome: Outcome, guild_id: int | None = None, topic: str | None = None, n: int = 1
    ) -> None:
        """Count a question by outcome ("answered" or the decline reason) and, when answered, its lead topic."""
        day = self._now().date()
        await self._run(
            lambda s: gaps.add_count(s, outcome, guild_id=guild_id, topic=topic, day=day, n=n), "count the question"
        )

    async def gap_groups(
        self, since: dt.datetime, limit: int = 10, threshold: float = DEFAULT_THRESHOLD,
        guild_id: int | None = None, max_questions: int = 2000,
    ) -> list[GapGroup]:
        """The largest groups of similar questions since ``since`` (from the newest ``max_questions``)."""
        samples = await self._run(
            lambda s: gaps.load_samples(s, since, max_questions, guild_id), "read the gaps"
        )
        return await asyncio.to_thread(group_gaps, samples, threshold, limit)

    async def stats(self, since: dt.datetime, guild_id: int | None = None) -> Stats:
        return await self._run(lambda s: stats.compute(s, since, guild_id), "compute the stats")

    # -- privacy ---------------------------------------------------------------------------------

    async def forget_user(self, user_id: int | str) -> int:
        """Delete every report this user made; returns how many."""
        reporter = await self.reporter_hash(user_id)
        return await self._run(lambda s: feedback.delete_by_reporter(s, reporter), "forget the user")

    async def count_user_reports(self, user_id: int | str) -> int:
        reporter = await self.reporter_hash(user_id)
        return await self._run(lambda s: feedback.count_by_reporter(s, reporter), "count the user's reports")

    async def purge_older_than(self, days: int | None = None) -> PurgeReport:
        """Delete question texts older than ``days`` (default SPACEBOT_RETENTION_DAYS); counts stay."""
        cutoff = self._now() - dt.timedelta(days=days if days is not None else self.settings.retention_days)
        return await self._run(lambda s: gaps.purge_texts(s, cutoff), "purge old question texts")

    # -- per-server settings ---------------------------------------------------------------------

    async def get_guild_settings(self, guild_id: int) -> GuildSettings:
        """The server's settings, or the defaults for a server never configured."""
        return await self._run(lambda s: guilds.get_settings(s, guild_id), "read the server settings")

    async def list_guild_settings(self) -> list[GuildSettings]:
        """Every configured server (to fill a cache on start)."""
        return await self._run(guilds.all_settings, "read the server settings")

    async def set_guild_settings(self, settings: GuildSettings) -> GuildSettings:
        now = self._now()
        return await self._run(lambda s: guilds.put_settings(s, settings, now), "save the server settings")

    async def update_guild_settings(self, guild_id: int, /, **changes: Any) -> GuildSettings:
        """Change some fields (``ephemeral_default=True``...) and keep the others."""

        async def update(session: AsyncSession) -> GuildSettings:
            current = await guilds.get_settings(session, guild_id)
            return await guilds.put_settings(session, guilds.with_changes(current, changes), now)

        now = self._now()
        return await self._run(update, "save the server settings")

    # -- heartbeats ------------------------------------------------------------------------------

    async def heartbeat(
        self, process_id: str, host: str, shard_ids: Sequence[int] = (), kb_version: str | None = None
    ) -> Heartbeat:
        now = self._now()
        return await self._run(
            lambda s: guilds.beat(s, process_id, host=host, shard_ids=shard_ids, kb_version=kb_version, now=now),
            "write the heartbeat",
        )

    async def list_heartbeats(self) -> list[Heartbeat]:
        return await self._run(guilds.all_heartbeats, "read the heartbeats")

    async def remove_heartbeats(self, process_id: str | None = None, older_than: dt.timedelta | None = None) -> int:
        """Remove one process's row (on shutdown), or every row not renewed for ``older_than``."""
        cutoff = self._now() - older_than if older_than is not None else None
        return await self._run(
            lambda s: guilds.remove_heartbeats(s, process_id, cutoff), "remove heartbeats"
        )

    # -- published knowledge (several processes) -------------------------------------------------

    async def publish_knowledge(self, kb_version: str, files: Mapping[str, str], by: str) -> PublicationInfo:
        """Make these validated knowledge files the current publication; PostgreSQL notifies listeners."""
        now = self._now()
        return await self._run(
            lambda s: publishing.publish(s, kb_version, files, by=by, now=now), "publish the knowledge base"
        )

    async def latest_publication(self) -> PublicationInfo | None:
        """The current publication, without its files (None: nothing published yet)."""
        return await self._run(publishing.latest, "read the published knowledge version")

    async def fetch_publication(self, publication_id: int) -> Publication | None:
        """A publication with its files (None: pruned since, a newer one replaced it)."""
        return await self._run(lambda s: publishing.fetch(s, publication_id), "read the published knowledge")
