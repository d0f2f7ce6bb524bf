"""Writes off the answer path: queued writes retry and log, never raise; a clicked write fails plainly."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from bot.storage import Storage, StorageUnavailableError, WriteQueue
from tests.storage.support import closed_port, storage_settings, vote

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(params=["postgresql-closed-port", "sqlite-folder-under-a-file"])
def unreachable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql-closed-port":
        return f"postgresql+asyncpg://spacebot@127.0.0.1:{closed_port()}/spacebot"
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the data folder should be\n")
    return f"sqlite+aiosqlite:///{blocker}/data/spacebot.db"


class Flaky:
    """A write that fails ``failures`` times with a storage error, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise StorageUnavailableError("database down")


async def test_queued_writes_to_an_unreachable_database_are_retried_logged_and_never_raise(
    unreachable_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.storage.queue")
    storage = Storage(storage_settings(unreachable_url, database_timeout=2.0))
    queue = WriteQueue(attempts=3, backoff=0.001)
    accepted = [
        queue.submit("gap", lambda: storage.record_gap("How much did JWST cost?", "not_covered", guild_id=7)),
        queue.submit("count", lambda: storage.count_question("out_of_scope", 7)),
    ]
    assert accepted == [True, True]  # submit returned at once, without raising
    assert await queue.drain(within=60)
    assert (queue.stats.written, queue.stats.failed, queue.stats.retried) == (0, 2, 4)
    retries = [r for r in caplog.records if r.levelno == logging.WARNING and "retrying" in r.getMessage()]
    given_up = [r for r in caplog.records if r.levelno == logging.ERROR and "not recorded" in r.getMessage()]
    assert len(retries) == 4 and len(given_up) == 2
    assert "unavailable" in given_up[0].getMessage()
    await queue.close(grace=1)
    await storage.close()


async def test_a_clicked_write_to_an_unreachable_database_fails_with_one_clear_error(unreachable_url: str) -> None:
    storage = Storage(storage_settings(unreachable_url, database_timeout=2.0))
    with pytest.raises(StorageUnavailableError, match="unavailable"):
        await storage.record_feedback(vote())
    with pytest.raises(StorageUnavailableError):
        await storage.get_guild_settings(7)
    await storage.close()


async def test_opening_an_unreachable_database_says_so(unreachable_url: str) -> None:
    with pytest.raises(StorageUnavailableError, match="unavailable"):
        await Storage.open(storage_settings(unreachable_url, database_timeout=2.0))


async def test_a_storage_started_while_its_database_was_down_recovers_when_it_comes_back(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder yet\n")
    storage = Storage(storage_settings(f"sqlite+aiosqlite:///{blocker}/spacebot.db"))
    with pytest.raises(StorageUnavailableError):
        await storage.count_question("answered", 7)
    blocker.unlink()  # the "database" comes back
    await storage.count_question("answered", 7)
    assert (await storage.stats(LONG_AGO)).answered == 1
    await storage.close()


async def test_a_write_that_fails_then_succeeds_is_recorded_once() -> None:
    queue = WriteQueue(attempts=4, backoff=0.001)
    write = Flaky(failures=2)
    assert queue.submit("flaky", write)
    assert await queue.drain(within=10)
    assert write.calls == 3
    assert (queue.stats.written, queue.stats.retried, queue.stats.failed) == (1, 2, 0)
    await queue.close(grace=1)


async def test_a_bug_in_a_write_is_logged_once_not_retried_and_the_queue_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    async def broken() -> None:
        calls.append("broken")
        raise KeyError("a bug")

    async def fine() -> None:
        calls.append("fine")

    queue = WriteQueue(attempts=5, backoff=0.001)
    queue.submit("broken", broken)
    queue.submit("fine", fine)
    assert await queue.drain(within=10)
    assert calls == ["broken", "fine"]
    assert (queue.stats.failed, queue.stats.written, queue.stats.retried) == (1, 1, 0)
    assert "storage write broken failed" in caplog.text
    await queue.close(grace=1)


async def test_a_full_queue_drops_new_writes_and_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    queue = WriteQueue(max_size=2, attempts=1)
    results = [queue.submit(f"write {n}", Flaky(failures=0)) for n in range(4)]  # the worker has not run yet
    assert results == [True, True, False, False]
    assert queue.stats.dropped == 2 and "dropped" in caplog.text
    assert await queue.drain(within=10)
    assert queue.stats.written == 2
    await queue.close(grace=1)


async def test_a_closed_queue_refuses_writes_without_raising() -> None:
    queue = WriteQueue()
    await queue.close(grace=1)
    assert queue.submit("late", Flaky(failures=0)) is False
    assert queue.stats.dropped == 1


async def test_closing_finishes_the_queued_writes_first(database_url: str) -> None:
    storage = Storage(storage_settings(database_url))
    queue = WriteQueue(backoff=0.001)
    for _ in range(5):
        queue.submit("count", lambda: storage.count_question("answered", 7, "russia-iss"))
    await queue.close(grace=30)
    assert queue.stats.written == 5
    assert (await storage.stats(LONG_AGO)).answered == 5
    await storage.close()
