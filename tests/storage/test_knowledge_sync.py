"""KnowledgeSync: processes (here: engines in one test, each with its own folders) follow one published
knowledge base on PostgreSQL; with SQLite nothing is published. Fake encoder: fast and deterministic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.core.engine import Engine
from bot.core.knowledge_files import read_knowledge_files
from bot.storage import Storage, StorageUnavailableError
from bot.storage.knowledge_sync import KnowledgeSync
from tests.conftest import SettingsFactory
from tests.storage.support import storage_settings
from tests.support.fake_encoder import FakeEncoder
from tests.support.kb import STORYLINE_FILE, mini_documents, passage, write_documents, write_mini_kb, write_raw

NEW_PASSAGE = "debris-2022-09-fcc-five-year-rule"
WAIT = 10.0
EngineFactory = Callable[[str], Engine]


@pytest.fixture
def open_engine(tmp_path: Path, settings_for: SettingsFactory, fake_encoder: FakeEncoder) -> Iterator[EngineFactory]:
    """``open_engine("a")``: an engine with its own knowledge and index folders (one "machine" each)."""
    engines: list[Engine] = []

    def make(name: str) -> Engine:
        base = tmp_path / name
        write_mini_kb(base / "knowledge")
        engine = Engine.open(settings_for(base), fake_encoder)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
async def storages(pg_url: str) -> AsyncIterator[Callable[[], Storage]]:
    """``storages()``: another process's connection to the one PostgreSQL database."""
    opened: list[Storage] = []

    def make() -> Storage:
        storage = Storage(storage_settings(pg_url))
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        await storage.close()


def reword(knowledge: Path, text: str = "Russia now says it stays through 2030.") -> None:
    documents = mini_documents()
    passage(documents, "mini-iss-2023-04-through-2028")["text"] = text
    write_documents(knowledge, {STORYLINE_FILE: documents[STORYLINE_FILE]})


async def served(engine: Engine, kb_version: str, within: float = WAIT) -> None:
    """Return once ``engine`` serves ``kb_version``; fail after ``within`` seconds."""
    for _ in range(int(within / 0.02)):
        if engine.snapshot.version == kb_version:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"still serving {engine.snapshot.version}, not {kb_version}, after {within} s")


async def reported(sync: KnowledgeSync, kb_version: str, within: float = WAIT) -> bool:
    """Whether the process's heartbeat row says ``kb_version`` within ``within`` seconds."""
    for _ in range(int(within / 0.02)):
        if any(b.process_id == sync.process_id and b.kb_version == kb_version for b in await sync.processes()):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_reload_publishes_exactly_the_files_it_loaded(
    open_engine: EngineFactory, storages: Callable[[], Storage]
) -> None:
    engine = open_engine("a")
    sync = KnowledgeSync(storages(), lambda: engine, process_id="a")
    reword(engine.settings.knowledge_dir)

    report = await sync.reload_and_publish(engine, actor="mod")

    latest = await sync.storage.latest_publication()
    assert report.ok and latest is not None
    assert (latest.kb_version, latest.published_by) == (report.kb_version, "a")
    publication = await sync.storage.fetch_publication(latest.id)
    assert publication is not None
    assert dict(publication.files) == read_knowledge_files(engine.settings.knowledge_dir)


async def test_a_process_started_after_a_publication_takes_it(
    open_engine: EngineFactory, storages: Callable[[], Storage]
) -> None:
    a = open_engine("a")
    publisher = KnowledgeSync(storages(), lambda: a, process_id="a")
    reword(a.settings.knowledge_dir)
    (a.settings.knowledge_dir / "moon.yaml").unlink()
    published = await publisher.reload_and_publish(a, actor="mod")
    late = open_engine("late")
    assert late.snapshot.version != published.kb_version

    assert await KnowledgeSync(storages(), lambda: late, process_id="late").catch_up()

    assert late.snapshot.version == published.kb_version
    assert "moon.yaml" not in read_knowledge_files(late.settings.knowledge_dir)
    assert read_knowledge_files(late.settings.knowledge_dir) == read_knowledge_files(a.settings.knowledge_dir)
    assert late.last_reload_by == "a (published)"


async def test_a_process_that_starts_listening_takes_the_publication_it_missed_without_a_notification(
    open_engine: EngineFactory, storages: Callable[[], Storage]
) -> None:
    a = open_engine("a")
    reword(a.settings.knowledge_dir)
    published = await KnowledgeSync(storages(), lambda: a, process_id="a").reload_and_publish(a, actor="mod")
    late = open_engine("late")
    sync = KnowledgeSync(storages(), lambda: late, process_id="late")

    sync.start()  # no notification is coming: connecting is what makes it check
    try:
        await served(late, published.kb_version)
    finally:
        await sync.stop()


async def test_a_publication_that_does_not_validate_here_leaves_the_old_knowledge_serving_once(
    open_engine: EngineFactory, storages: Callable[[], Storage], caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine("b")
    old_version = engine.snapshot.version
    files = read_knowledge_files(engine.settings.knowledge_dir)
    files["broken.yaml"] = "topic: broken\ntitle: Broken\npassages: [\n"
    sync = KnowledgeSync(storages(), lambda: engine, process_id="b")
    await sync.storage.publish_knowledge("kb-elsewhere", files, by="newer-bot")

    assert not await sync.catch_up()
    reloaded_at = engine.last_reload_at
    assert not await sync.catch_up()  # the same publication is not tried again

    assert engine.snapshot.version == old_version
    assert engine.answer("When is Russia leaving the ISS?").kb_version == old_version
    assert engine.last_reload_at == reloaded_at
    assert "does not validate here" in caplog.text


async def test_a_publication_naming_a_path_outside_the_folder_writes_nothing(
    open_engine: EngineFactory, storages: Callable[[], Storage], tmp_path: Path
) -> None:
    engine = open_engine("b")
    files = read_knowledge_files(engine.settings.knowledge_dir) | {"../escaped.yaml": "topic: x\n"}
    sync = KnowledgeSync(storages(), lambda: engine, process_id="b")
    await sync.storage.publish_knowledge("kb-evil", files, by="somebody")

    assert not await sync.catch_up()

    assert not (tmp_path / "b" / "escaped.yaml").exists()
    assert engine.last_reload_at is None


async def test_a_reload_whose_publication_failed_is_published_at_the_next_check_and_never_reverted(
    open_engine: EngineFactory, storages: Callable[[], Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine("a")
    sync = KnowledgeSync(storages(), lambda: engine, process_id="a")
    await sync.storage.publish_knowledge(engine.snapshot.version, read_knowledge_files(engine.settings.knowledge_dir),
                                         by="a")
    real_publish = sync.storage.publish_knowledge

    async def database_down(*args: object, **kwargs: object) -> None:
        raise StorageUnavailableError("database down")

    monkeypatch.setattr(sync.storage, "publish_knowledge", database_down)  # this instance only
    reword(engine.settings.knowledge_dir)
    report = await sync.reload_and_publish(engine, actor="mod")
    assert report.ok

    with pytest.raises(StorageUnavailableError):  # still down: the caller logs it and retries later
        await sync.catch_up()
    assert engine.snapshot.version == report.kb_version
    monkeypatch.setattr(sync.storage, "publish_knowledge", real_publish)
    assert not await sync.catch_up()  # publishes the reload instead of going back to the older publication

    latest = await sync.storage.latest_publication()
    assert latest is not None and latest.kb_version == report.kb_version
    assert engine.snapshot.version == report.kb_version


async def test_a_notified_process_loads_a_publication_without_waiting_for_its_poll(
    open_engine: EngineFactory, storages: Callable[[], Storage]
) -> None:
    a, b = open_engine("a"), open_engine("b")
    publisher = KnowledgeSync(storages(), lambda: a, process_id="a")
    follower = KnowledgeSync(storages(), lambda: b, process_id="b")
    follower.start()
    try:
        assert follower.listener is not None
        await asyncio.wait_for(follower.listener.connected.wait(), WAIT)
        await follower.beat([1])  # the bot's first tick
        reword(a.settings.knowledge_dir)
        report = await publisher.reload_and_publish(a, actor="mod")

        await served(b, report.kb_version)
        assert await reported(follower, report.kb_version)  # it says so as soon as it has loaded it
    finally:
        await follower.stop()
    assert "b" not in {beat.process_id for beat in await publisher.storage.list_heartbeats()}


async def test_heartbeats_report_each_process_shards_and_version(
    open_engine: EngineFactory, storages: Callable[[], Storage]
) -> None:
    engine = open_engine("a")
    sync = KnowledgeSync(storages(), lambda: engine, host="machine-a")

    await sync.beat([2, 3])
    beat = await sync.beat()  # the shards given last

    assert sync.process_id.startswith("machine-a:")
    assert (beat.host, beat.shard_ids, beat.kb_version) == ("machine-a", (2, 3), engine.snapshot.version)
    assert [b.process_id for b in await sync.processes()] == [sync.process_id]


async def test_with_sqlite_a_reload_publishes_nothing_and_nothing_is_followed(
    open_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = open_engine("a")
    async with Storage(storage_settings(f"sqlite+aiosqlite:///{tmp_path}/db/spacebot.db")) as storage:
        sync = KnowledgeSync(storage, lambda: engine, process_id="a")
        reword(engine.settings.knowledge_dir)

        report = await sync.reload_and_publish(engine, actor="mod")

        assert report.ok and engine.snapshot.version == report.kb_version
        assert sync.listener is None and not sync.publishes
        assert await storage.latest_publication() is None
        await storage.publish_knowledge("kb-other", {"x.yaml": "topic: x\n"}, by="someone")
        assert not await sync.catch_up()
        assert engine.snapshot.version == report.kb_version
        assert (await sync.beat([0])).kb_version == report.kb_version  # heartbeats on both backends


async def test_files_edited_during_the_reload_are_not_published(
    open_engine: EngineFactory, storages: Callable[[], Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine("a")
    sync = KnowledgeSync(storages(), lambda: engine, process_id="a")
    real_reload = engine.reload

    async def reload_while_a_moderator_edits(actor: str | None = None):  # type: ignore[no-untyped-def]
        report = await real_reload(actor)
        write_raw(engine.settings.knowledge_dir, "late-edit.yaml", "topic: late\n")
        return report

    monkeypatch.setattr(engine, "reload", reload_while_a_moderator_edits)  # this instance only

    report = await sync.reload_and_publish(engine, actor="mod")

    assert report.ok
    assert await sync.storage.latest_publication() is None
