"""``WriteQueue``: fire-and-forget writes (gaps, counters) off the answer path, retried and logged.

``submit`` never waits and never raises: it puts the write on an in-memory queue that one background
task works through. A write that fails with a storage error is retried with exponential backoff;
after the last attempt it is logged as not recorded and dropped. When the queue is full (the database
has been down for a long time) new writes are dropped and counted, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.storage.errors import StorageError, describe

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[object]]  # called once per attempt, so each attempt is a fresh coroutine


@dataclass
class QueueStats:
    submitted: int = 0
    written: int = 0
    retried: int = 0  # attempts after a failure
    failed: int = 0  # writes given up after the last attempt (or that failed with a bug, not retried)
    dropped: int = 0  # writes refused because the queue was full or closed


class WriteQueue:
    def __init__(
        self, *, max_size: int = 10_000, attempts: int = 5, backoff: float = 0.5, max_backoff: float = 30.0
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._queue: asyncio.Queue[tuple[str, Write]] = asyncio.Queue(max_size)
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = QueueStats()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        """Start the background writer in the running loop (``submit`` does it on first use)."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="storage-write-queue")

    def submit(self, description: str, write: Write) -> bool:
        """Queue ``write`` (e.g. ``lambda: storage.record_gap(...)``); False if it was dropped. Never raises."""
        if self._closed:
            self.stats.dropped += 1
            log.warning("storage write %s dropped: the write queue is closed", description)
            return False
        try:
            self._queue.put_nowait((description, write))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.warning("storage write %s dropped: %d writes already waiting", description, self._queue.qsize())
            return False
        self.stats.submitted += 1
        self.start()
        return True

    async def drain(self, within: float | None = None) -> bool:
        """Wait until every submitted write is written or given up; False if ``within`` seconds passed first."""
        try:
            async with asyncio.timeout(within):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self, grace: float = 5.0) -> None:
        """Refuse new writes, finish the queued ones for up to ``grace`` seconds, then stop."""
        self._closed = True
        if not await self.drain(grace):
            log.warning("storage write queue closed with %d writes not recorded", self._queue.qsize())
        if self._worker is not None:
            self._worker.cancel()
            # wait() neither raises the worker's CancelledError nor swallows a cancellation of close itself
            await asyncio.wait({self._worker})

    async def _work(self) -> None:
        while True:
            description, write = await self._queue.get()
            try:
                await self._write(description, write)
            finally:
                self._queue.task_done()

    async def _write(self, description: str, write: Write) -> None:
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                await write()
            except StorageError as exc:
                if attempt == self._attempts:
                    self.stats.failed += 1
                    log.error("storage write %s not recorded after %d attempts: %s",
                              description, attempt, describe(exc))
                    return
                log.warning("storage write %s failed (attempt %d of %d): %s; retrying in %.2f s",
                            description, attempt, self._attempts, describe(exc), delay)
                self.stats.retried += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
            except Exception:  # a bug in the write itself: retrying cannot help, and the worker must live on
                self.stats.failed += 1
                log.exception("storage write %s failed", description)
                return
            else:
                self.stats.written += 1
                return
