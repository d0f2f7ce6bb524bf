"""The bot's link to the database: storage, write queue, answer recorder and per-server settings cache.

The database is never on the answer path: it is opened in the background, a failure to open is
one warning (the bot answers on, and the storage retries on its next use), answers are recorded
through a :class:`WriteQueue`, and server settings are read from memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from bot.core.engine import Engine
from bot.core.models import Answer
from bot.storage import (
    AnswerRecorder,
    GuildSettings,
    GuildSettingsCache,
    PurgeReport,
    Storage,
    StorageError,
    StorageSettings,
    WriteQueue,
)
from bot.storage.errors import describe
from bot.storage.knowledge_sync import KnowledgeSync
from bot.storage.recorder import vectorize_with

log = logging.getLogger(__name__)

EngineGetter = Callable[[], Engine | None]
T = TypeVar("T")
CLOSE_GRACE_SECONDS = 5.0


class BotStorage:
    """Everything the Discord shell keeps in the database, behind calls that never block an answer."""

    def __init__(
        self, settings: StorageSettings, engine: EngineGetter, *, queue: WriteQueue | None = None,
        close_grace: float = CLOSE_GRACE_SECONDS,
    ) -> None:
        self.storage = Storage(settings)
        self.queue = queue or WriteQueue()
        self.guild_settings = GuildSettingsCache(self.storage)
        self.recorder = AnswerRecorder(self.storage, self.queue, vectorize=vectorize_with(engine))
        # Publishes this process's reloads and follows the others' (PostgreSQL); heartbeats on both backends.
        self.sync = KnowledgeSync(self.storage, engine)
        self.available = False  # True once the database opened; the storage retries by itself when it is not
        self._close_grace = close_grace
        self._opening: asyncio.Task[None] | None = None
        self._maintenance: set[asyncio.Task[Any]] = set()

    def open_in_background(self) -> None:
        self._opening = asyncio.create_task(self._open(), name="spacebot-storage-open")

    async def wait_opened(self) -> None:
        """For tests and shutdown: wait until the first attempt to open has finished. Cancelling the
        waiter leaves the opening running (``gather`` would cancel it: a migration cut short)."""
        if self._opening is not None:
            await asyncio.wait({self._opening})

    async def _open(self) -> None:
        try:
            await self.storage.ensure_ready()
        except StorageError as exc:
            log.warning("database unavailable, answering without recording (%s): %s", self.storage.url, describe(exc))
            return
        self.available = True
        await self.guild_settings.load()
        log.info("database ready: %s", self.storage.url)

    def settings_for(self, guild_id: int | None) -> GuildSettings | None:
        """The server's settings from memory (defaults until loaded); None outside a server."""
        return self.guild_settings.get(guild_id) if guild_id is not None else None

    def observe(self, answer: Answer, guild_id: int | None) -> None:
        """Count the answer and queue its gap, if it is one; never waits, never raises."""
        self.recorder.observe(answer, guild_id)

    async def purge_old_texts(self) -> PurgeReport:
        """Delete question texts past retention; a shutdown waits for it rather than cutting it short."""
        return await self._maintain(self.storage.purge_older_than(), "spacebot-retention-purge")

    async def _maintain(self, work: Coroutine[Any, Any, T], name: str) -> T:
        # Shielded: cancelling the caller (a cog unloading) must not cut a transaction short while
        # close() disposes the connections under it; close() waits for these tasks instead.
        task = asyncio.create_task(work, name=name)
        self._maintenance.add(task)
        task.add_done_callback(self._maintenance_done)
        return await asyncio.shield(task)

    def _maintenance_done(self, task: asyncio.Task[Any]) -> None:
        self._maintenance.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here: a task whose caller was cancelled must not log "never retrieved"

    async def close(self) -> None:
        """Let a start that is still opening the database finish (a migration cut short would leave its
        connection in use), write what is queued, then close the connections."""
        opening = self._opening
        if opening is not None and not opening.done():
            await asyncio.wait({opening}, timeout=self._close_grace)
            opening.cancel()
            # wait() neither raises the opening's CancelledError nor swallows a cancellation of close itself
            await asyncio.wait({opening})
        await self.queue.close(self._close_grace)
        await self._finish_maintenance()
        await self.sync.stop()
        await self.storage.close()

    async def _finish_maintenance(self) -> None:
        if not self._maintenance:
            return
        running = set(self._maintenance)
        _, late = await asyncio.wait(running, timeout=self._close_grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
