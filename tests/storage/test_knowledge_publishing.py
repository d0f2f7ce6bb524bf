"""Published knowledge: publish, read the latest, fetch its files (both backends); LISTEN/NOTIFY (PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.storage import Storage
from bot.storage.notifications import APPLICATION_NAME, NotificationListener, asyncpg_dsn
from bot.storage.publishing import KEEP_PUBLICATIONS, KNOWLEDGE_CHANNEL
from tests.storage.support import FakeClock, closed_port, storage_settings

FILES = {"russia-iss.yaml": "topic: russia-iss\npassages: []\n", "scope.md": "Space policy ✓\n"}
WAIT = 10.0


async def test_nothing_is_published_on_a_new_database(storage: Storage) -> None:
    assert await storage.latest_publication() is None
    assert await storage.fetch_publication(1) is None


async def test_a_publication_keeps_its_version_files_time_and_publisher(storage: Storage, clock: FakeClock) -> None:
    published = await storage.publish_knowledge("kb-1", FILES, by="host-a:100:ab12")

    latest = await storage.latest_publication()
    assert latest == published
    assert (latest.kb_version, latest.published_by, latest.published_at) == ("kb-1", "host-a:100:ab12", clock.now)
    fetched = await storage.fetch_publication(latest.id)
    assert fetched is not None and dict(fetched.files) == FILES and fetched.kb_version == "kb-1"


async def test_the_newest_publication_is_the_latest_even_when_it_returns_to_an_older_version(
    storage: Storage, clock: FakeClock
) -> None:
    await storage.publish_knowledge("kb-1", FILES, by="a")
    clock.advance(minutes=1)
    await storage.publish_knowledge("kb-2", {"x.yaml": "2"}, by="b")
    clock.advance(minutes=1)
    rollback = await storage.publish_knowledge("kb-1", FILES, by="c")

    latest = await storage.latest_publication()
    assert latest is not None and latest.id == rollback.id
    assert (latest.kb_version, latest.published_by) == ("kb-1", "c")


async def test_only_the_newest_publications_are_kept(storage: Storage) -> None:
    first = await storage.publish_knowledge("kb-0", FILES, by="a")
    for number in range(1, KEEP_PUBLICATIONS + 1):
        newest = await storage.publish_knowledge(f"kb-{number}", FILES, by="a")

    assert await storage.fetch_publication(first.id) is None
    assert await storage.fetch_publication(first.id + 1) is not None
    assert (await storage.latest_publication()) == newest


# -- LISTEN/NOTIFY (PostgreSQL only) ---------------------------------------------------------------


@pytest.fixture
async def pg_storage(pg_url: str) -> AsyncIterator[Storage]:
    opened = await Storage.open(storage_settings(pg_url))
    try:
        yield opened
    finally:
        await opened.close()


class Received:
    """What a listener got: payloads, and how many times it (re)connected."""

    def __init__(self) -> None:
        self.payloads: asyncio.Queue[str] = asyncio.Queue()
        self.connects: asyncio.Queue[None] = asyncio.Queue()

    def notice(self, payload: str) -> None:
        self.payloads.put_nowait(payload)

    def connected(self) -> None:
        self.connects.put_nowait(None)


async def test_a_listener_is_notified_of_each_publication_with_its_version(
    pg_url: str, pg_storage: Storage
) -> None:
    received = Received()
    listener = NotificationListener(pg_url, KNOWLEDGE_CHANNEL, received.notice, on_connect=received.connected)
    listener.start()
    try:
        await asyncio.wait_for(received.connects.get(), WAIT)
        await pg_storage.publish_knowledge("kb-1", FILES, by="a")
        await pg_storage.publish_knowledge("kb-2", FILES, by="b")

        assert await asyncio.wait_for(received.payloads.get(), WAIT) == "kb-1"
        assert await asyncio.wait_for(received.payloads.get(), WAIT) == "kb-2"
    finally:
        await listener.stop()
    assert not listener.connected.is_set()


async def test_a_listener_whose_connection_is_killed_reconnects_and_hears_the_next_publication(
    pg_url: str, pg_storage: Storage
) -> None:
    received = Received()
    listener = NotificationListener(pg_url, KNOWLEDGE_CHANNEL, received.notice, on_connect=received.connected,
                                    first_retry=0.05)
    listener.start()
    try:
        await asyncio.wait_for(received.connects.get(), WAIT)
        assert await _terminate_listeners(pg_url) == 1

        await asyncio.wait_for(received.connects.get(), WAIT)  # on_connect again: the owner catches up
        await pg_storage.publish_knowledge("kb-after", FILES, by="a")

        assert await asyncio.wait_for(received.payloads.get(), WAIT) == "kb-after"
        assert listener.connections == 2
    finally:
        await listener.stop()


async def test_a_listener_started_while_the_database_is_down_keeps_trying_without_raising(
    unreachable_pg_url: str,
) -> None:
    received = Received()
    listener = NotificationListener(unreachable_pg_url, KNOWLEDGE_CHANNEL, received.notice,
                                    on_connect=received.connected, first_retry=0.01, max_retry=0.02)
    listener.start()
    await asyncio.sleep(0.3)
    task = listener._task
    await listener.stop()

    assert task is not None and task.cancelled()  # it was still retrying, not crashed
    assert received.connects.empty() and listener.connections == 0


@pytest.fixture
def unreachable_pg_url() -> str:
    return f"postgresql+asyncpg://spacebot@127.0.0.1:{closed_port()}/spacebot"


async def _terminate_listeners(url: str) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=WAIT)
    try:
        rows = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 "
            "AND datname = current_database()", APPLICATION_NAME,
        )
    finally:
        await connection.close()
    return len(rows)
