"""Shutdown of ``spacebot run``: every task the bot's storage starts ends when cancelled, and a
cancelled waiter never cancels the database start it waits for (issue 11/12).

The runner names the tasks still running 10 s after it cancelled them. The storage had two ways to
get there: ``close`` awaited a task it had just cancelled inside ``contextlib.suppress(CancelledError)``,
which also swallowed a cancellation of ``close`` itself (the task running it then carried on instead of
ending), and ``wait_opened`` used ``gather``, so cancelling a waiter (the retention loop, when its cog
unloads at shutdown) cancelled the database start, migration and all, behind ``close``'s back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.discord_bot.persistence import BotStorage
from bot.storage import PurgeReport, StorageSettings, WriteQueue

CLEANUP_SECONDS = 0.3  # what a cancelled database call takes to roll back and close its connection


class SlowToStopStorage:
    """Stands in for ``Storage``: opening never finishes, and a cancelled open takes a moment to clean up."""

    url = "sqlite+aiosqlite:///slow.db"

    def __init__(self) -> None:
        self.open_cancelled = asyncio.Event()
        self.closed = False

    async def ensure_ready(self) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.open_cancelled.set()
            await asyncio.sleep(CLEANUP_SECONDS)
            raise

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
async def slow_db(tmp_path: Path) -> AsyncIterator[tuple[BotStorage, SlowToStopStorage]]:
    settings = StorageSettings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")  # type: ignore[call-arg]
    db = BotStorage(settings, lambda: None, close_grace=0.05)
    slow = SlowToStopStorage()
    real_storage, db.storage = db.storage, slow  # type: ignore[assignment]
    db.open_in_background()
    await asyncio.sleep(0)
    try:
        yield db, slow
    finally:
        opening = db._opening
        if opening is not None and not opening.done():
            opening.cancel()
            await asyncio.wait({opening})
        await db.queue.close(0)
        await real_storage.close()


async def test_cancelling_a_waiter_does_not_cancel_the_database_start(
    slow_db: tuple[BotStorage, SlowToStopStorage]
) -> None:
    db, slow = slow_db
    waiter = asyncio.create_task(db.wait_opened())
    await asyncio.sleep(0.01)

    waiter.cancel()
    await asyncio.wait({waiter})
    await asyncio.sleep(0.01)

    assert waiter.cancelled()
    assert not slow.open_cancelled.is_set()
    assert db._opening is not None and not db._opening.done()


async def test_closing_the_storage_ends_when_the_closing_task_is_cancelled(
    slow_db: tuple[BotStorage, SlowToStopStorage]
) -> None:
    db, slow = slow_db
    closer = asyncio.create_task(db.close(), name="closer")
    await asyncio.wait_for(slow.open_cancelled.wait(), 5)  # past the grace: close cancelled the start

    closer.cancel()  # what the runner does to every task left at shutdown
    await asyncio.wait({closer}, timeout=CLEANUP_SECONDS * 10)

    assert closer.done() and closer.cancelled()
    assert not slow.closed  # it stopped where it was cancelled instead of carrying on


async def test_closing_the_write_queue_ends_when_the_closing_task_is_cancelled() -> None:
    queue = WriteQueue(attempts=1)
    write_cancelled = asyncio.Event()

    async def write_slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            write_cancelled.set()
            await asyncio.sleep(CLEANUP_SECONDS)
            raise

    queue.submit("slow", write_slow_to_stop)
    await asyncio.sleep(0.01)
    closer = asyncio.create_task(queue.close(0.05))
    await asyncio.wait_for(write_cancelled.wait(), 5)

    closer.cancel()
    await asyncio.wait({closer}, timeout=CLEANUP_SECONDS * 10)

    assert closer.done() and closer.cancelled()


async def test_closing_waits_for_a_retention_purge_whose_loop_was_cancelled(tmp_path: Path) -> None:
    """The retention loop is cancelled when its cog unloads, then ``close`` disposes the connections. A
    purge cut short there left SQLAlchemy closing its connection behind the disposal, on a thread that
    never answered: the event loop could not finish (CI's test run hung). Close now waits for the purge."""
    settings = StorageSettings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")  # type: ignore[call-arg]
    db = BotStorage(settings, lambda: None, close_grace=5.0)
    db.open_in_background()
    await db.wait_opened()
    purge_started, purges_finished = asyncio.Event(), []
    purge = db.storage.purge_older_than

    async def slow_purge(days: int | None = None) -> PurgeReport:
        purge_started.set()
        await asyncio.sleep(CLEANUP_SECONDS)
        report = await purge(days)
        purges_finished.append(report)
        return report

    db.storage.purge_older_than = slow_purge  # type: ignore[method-assign]
    loop_iteration = asyncio.create_task(db.purge_old_texts())
    await asyncio.wait_for(purge_started.wait(), 5)

    loop_iteration.cancel()
    await db.close()

    assert loop_iteration.cancelled()
    assert purges_finished == [PurgeReport(gaps_purged=0, reports_anonymised=0)]
