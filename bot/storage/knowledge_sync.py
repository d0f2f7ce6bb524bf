"""Several processes, on several machines, serving one knowledge base (PostgreSQL).

A successful reload in any process publishes the knowledge files it validated
(:meth:`KnowledgeSync.reload_and_publish`); PostgreSQL notifies every listening process, which
fetches the files, writes them into its own knowledge folder, reloads (incrementally: only changed
passages are embedded again) and swaps. Each process also polls the current publication now and
then (:meth:`KnowledgeSync.catch_up`), and catches up whenever its listening connection (re)opens,
so a notification missed while the database was unreachable, and a publication made before the
process started, are picked up too. Heartbeats (:meth:`KnowledgeSync.beat`) say which version each
process serves.

With SQLite nothing is published: processes on one machine share the index folder instead (the
Discord shell's index watcher); heartbeats are written on both backends. Nothing here is on the
answer path: the engine keeps serving what it has while the database is slow or down, and a
publication that does not validate here leaves the old knowledge base serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from bot.core.knowledge_files import UnsafeFileNameError, read_knowledge_files, write_knowledge_files
from bot.core.models import ReloadReport
from bot.storage.database import is_sqlite
from bot.storage.errors import StorageError, describe
from bot.storage.notifications import NotificationListener
from bot.storage.publishing import KNOWLEDGE_CHANNEL, Publication
from bot.storage.records import Heartbeat
from bot.storage.storage import Storage

if TYPE_CHECKING:  # the engine is handed in; importing it here would load the model libraries
    from bot.core.engine import Engine

log = logging.getLogger(__name__)

EngineGetter = Callable[[], "Engine | None"]
MAX_ID_LENGTH = 200  # the heartbeats table's column


def default_process_id(host: str) -> str:
    """``host:pid:random``: unique even when a pid is reused after a restart."""
    suffix = f":{os.getpid()}:{secrets.token_hex(2)}"
    return host[: MAX_ID_LENGTH - len(suffix)] + suffix


class KnowledgeSync:
    """This process's part in keeping every process on the same knowledge base, and its heartbeat."""

    def __init__(
        self, storage: Storage, engine: EngineGetter, *, process_id: str | None = None, host: str | None = None,
        listener: NotificationListener | None = None,
    ) -> None:
        self.storage = storage
        self.publishes = not is_sqlite(storage.settings.database_url)
        self.host = (host or socket.gethostname())[:MAX_ID_LENGTH]
        self.process_id = process_id or default_process_id(self.host)
        self.listener = listener
        if self.listener is None and self.publishes:
            self.listener = NotificationListener(
                storage.settings.database_url, KNOWLEDGE_CHANNEL, self._on_notice, on_connect=self._on_connect
            )
        self._engine = engine
        self._lock = asyncio.Lock()  # one catch-up or publication at a time
        self._shard_ids: tuple[int, ...] = ()
        self._rejected: int | None = None  # a publication that did not load here: not tried again
        self._unpublished: tuple[str, dict[str, str]] | None = None  # a reload here whose publication failed
        self._tasks: set[asyncio.Task[Any]] = set()
        self._beaten = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen for publications (PostgreSQL); each (re)connection catches up first. SQLite: nothing."""
        if self.listener is not None:
            self.listener.start()

    async def stop(self) -> None:
        """Stop listening and remove this process's heartbeat row (best effort: the database may be down)."""
        if self.listener is not None:
            await self.listener.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._beaten:  # never written (or the database never opened): nothing to remove, no wait
            with contextlib.suppress(StorageError):
                await self.storage.remove_heartbeats(self.process_id)

    def _on_notice(self, kb_version: str) -> None:
        log.debug("notified of published knowledge base %s", kb_version)
        self._spawn(self._catch_up_logged())

    def _on_connect(self) -> None:
        self._spawn(self._catch_up_logged())

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work, name="spacebot-knowledge-sync")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up_logged(self) -> None:
        try:
            await self.catch_up()
        except StorageError as exc:
            log.warning("could not read the published knowledge base (the next check retries): %s", describe(exc))
        except Exception:  # a task nobody awaits: say what went wrong here, the next check retries
            log.exception("could not load the published knowledge base (the next check retries)")

    # -- following the published knowledge ----------------------------------------------------------

    async def catch_up(self) -> bool:
        """Load the current publication if this process serves another version; True if it did.

        Raises StorageError when the database cannot be read (the caller retries later)."""
        engine = self._engine()
        if not self.publishes or engine is None:
            return False
        async with self._lock:
            await self._publish_pending(engine)  # first: an older publication must never revert a reload here
            latest = await self.storage.latest_publication()
            if latest is None or latest.kb_version == engine.snapshot.version or latest.id == self._rejected:
                return False
            publication = await self.storage.fetch_publication(latest.id)
            if publication is None:
                return False  # replaced meanwhile: its notification triggers the next check
            return await self._load(engine, publication)

    async def _load(self, engine: Engine, publication: Publication) -> bool:
        directory = engine.settings.knowledge_dir
        try:
            await asyncio.to_thread(write_knowledge_files, directory, publication.files)
        except (OSError, UnsafeFileNameError) as exc:
            log.error("cannot write published knowledge base %s into %s: %s", publication.kb_version, directory, exc)
            self._rejected = publication.id
            return False
        report = await engine.reload(actor=f"{publication.published_by} (published)")
        if not report.ok:
            log.error("published knowledge base %s does not validate here (%d errors); still serving %s",
                      publication.kb_version, len(report.errors), report.kb_version)
            self._rejected = publication.id
            return False
        if report.kb_version != publication.kb_version:  # e.g. another version of the bot reads the files
            log.warning("published knowledge base %s loaded here as version %s", publication.kb_version,
                        report.kb_version)
            self._rejected = publication.id
        log.info("loaded knowledge base %s published by %s: +%d ~%d -%d", report.kb_version,
                 publication.published_by, len(report.added), len(report.changed), len(report.removed))
        await self._beat_quietly()
        return True

    # -- publishing --------------------------------------------------------------------------------

    async def reload_and_publish(self, engine: Engine, actor: str | None = None) -> ReloadReport:
        """Reload from the knowledge folder; if it validates, publish exactly the files it loaded.

        The reload is the engine's own (a failed one leaves the old knowledge base serving). A
        publication that fails is retried at the next :meth:`catch_up`; it never fails the reload."""
        if self.publishes:
            async with self._lock:
                report = await self._reload_and_publish(engine, actor)
        else:
            report = await engine.reload(actor=actor)
        if report.ok:
            await self._beat_quietly()
        return report

    async def _reload_and_publish(self, engine: Engine, actor: str | None) -> ReloadReport:
        before = await self._read_files(engine)
        report = await engine.reload(actor=actor)
        if not report.ok or before is None:
            return report
        if await self._read_files(engine) != before:
            log.warning("the knowledge files changed during the reload: %s is not published; reload again",
                        report.kb_version)
            return report
        self._unpublished = (report.kb_version, before)
        try:
            await self._publish_pending(engine)
        except StorageError as exc:
            log.warning("could not publish knowledge base %s (retried at the next check): %s",
                        report.kb_version, describe(exc))
        return report

    async def _read_files(self, engine: Engine) -> dict[str, str] | None:
        try:
            return await asyncio.to_thread(read_knowledge_files, engine.settings.knowledge_dir)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read the knowledge files to publish them: %s", exc)
            return None

    async def _publish_pending(self, engine: Engine) -> None:
        """Publish a reload made here whose publication failed; raises StorageError while it still fails."""
        if self._unpublished is None:
            return
        kb_version, files = self._unpublished
        if kb_version != engine.snapshot.version:
            self._unpublished = None  # replaced since by another reload here
            return
        latest = await self.storage.latest_publication()
        if latest is None or latest.kb_version != kb_version:
            await self.storage.publish_knowledge(kb_version, files, by=self.process_id)
            log.info("published knowledge base %s (%d files) for the other processes", kb_version, len(files))
        self._unpublished = None

    # -- heartbeats --------------------------------------------------------------------------------

    async def beat(self, shard_ids: Sequence[int] | None = None) -> Heartbeat:
        """Write this process's heartbeat: its shards (the last ones given if None) and its kb_version."""
        if shard_ids is not None:
            self._shard_ids = tuple(shard_ids)
        engine = self._engine()
        version = engine.snapshot.version if engine is not None else None
        beat = await self.storage.heartbeat(self.process_id, self.host, self._shard_ids, version)
        self._beaten = True
        return beat

    async def _beat_quietly(self) -> None:
        """After a swap: /kb status shows the new version at once. Only once a heartbeat worked (a
        database that never opened must not delay a moderator's reply); a failure waits for the next tick."""
        if self._beaten:
            with contextlib.suppress(StorageError):
                await self.beat()

    async def processes(self, forget_after: dt.timedelta | None = None) -> list[Heartbeat]:
        """Every process's heartbeat; with ``forget_after``, rows silent that long are deleted first."""
        if forget_after is not None:
            await self.storage.remove_heartbeats(older_than=forget_after)
        return await self.storage.list_heartbeats()
