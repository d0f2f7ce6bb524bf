"""LISTEN on a PostgreSQL channel over a dedicated asyncpg connection that comes back when it is lost.

The connection is the listener's own (a pooled one would be handed to other work and stop
listening). When it drops, or fails a periodic check, it is reopened with an exponential backoff;
``on_connect`` is called after every (re)connection, so the owner can catch up on what was sent
while nobody listened. Both callbacks must return at once (schedule any work as a task).
Failures are logged, never raised: the first of a series as a warning, the repeats at debug
level, and the recovery as info.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bot.storage.database import safe_url

log = logging.getLogger(__name__)

APPLICATION_NAME = "spacebot-listener"
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0
CHECK_EVERY_SECONDS = 30.0  # a half-open TCP connection says nothing: ask the server now and then
CONNECT_TIMEOUT_SECONDS = 10.0

Notice = Callable[[str], None]
OnConnect = Callable[[], None]
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, asyncpg.PostgresError,
                                                      asyncpg.InterfaceError)


def asyncpg_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://...`` (SQLAlchemy's spelling) as the plain DSN asyncpg takes."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class NotificationListener:
    """Calls ``on_notice(payload)`` for each notification on ``channel`` while :meth:`start`-ed."""

    def __init__(
        self, database_url: str, channel: str, on_notice: Notice, *, on_connect: OnConnect | None = None,
        first_retry: float = FIRST_RETRY_SECONDS, max_retry: float = MAX_RETRY_SECONDS,
        check_every: float = CHECK_EVERY_SECONDS,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._where = safe_url(database_url)
        self.channel = channel
        self._on_notice = on_notice
        self._on_connect = on_connect
        self._first_retry, self._max_retry, self._check_every = first_retry, max_retry, check_every
        self.connected = asyncio.Event()  # set while listening
        self.connections = 0  # how many times it (re)connected: for logs and tests
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"spacebot-listen-{self.channel}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # asyncio.wait, not `await task` under suppress(CancelledError): a stop() that is itself
            # cancelled must end, not swallow its own cancellation and carry on.
            await asyncio.wait({task})
        self.connected.clear()

    async def _run(self) -> None:
        delay, failures = self._first_retry, 0
        while True:
            try:
                await self._listen_until_lost()
                delay, failures = self._first_retry, 0  # it worked for a while: start the backoff over
                log.warning("lost the notification connection to %s; reconnecting", self._where)
            except CONNECTION_ERRORS as exc:
                failures += 1
                log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                        "cannot listen for notifications on %s (retry in %.0f s): %s",
                        self._where, delay, type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry)

    async def _listen_until_lost(self) -> None:
        connection: asyncpg.Connection = await asyncpg.connect(
            self._dsn, timeout=CONNECT_TIMEOUT_SECONDS, server_settings={"application_name": APPLICATION_NAME}
        )
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(self.channel, self._deliver)
            self.connections += 1
            self.connected.set()
            log.info("listening for notifications on %s (%s)", self.channel, self._where)
            if self._on_connect is not None:
                self._call(self._on_connect)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._check_every)
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_SECONDS)
        finally:
            self.connected.clear()
            connection.terminate()

    def _deliver(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._call(self._on_notice, payload)

    def _call(self, callback: Callable[..., None], *args: str) -> None:
        """Callbacks must return at once (schedule the work); one that raises is logged, not fatal."""
        try:
            callback(*args)
        except Exception:
            log.exception("a notification callback on %s failed", self.channel)
