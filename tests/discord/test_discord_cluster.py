"""Several processes seen from Discord: /kb status lists every process; /kb reload publishes (PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from discord_harness import Harness, reword_one_passage
from fake_discord import FakeDiscord, FakeUser
from storage_harness import bot_with_storage

from bot.core.engine import Engine
from bot.core.knowledge import load_knowledge
from bot.core.knowledge_files import read_knowledge_files
from bot.discord_bot.config import DiscordSettings
from bot.discord_bot.embeds import MAX_PROCESS_LINES, process_lines
from bot.storage import Heartbeat, Storage, StorageSettings
from tests.storage.conftest import PG_ENV, pg_server, throwaway_database

OTHER_PROCESS = "machine-b:4242:beef"


async def own_heartbeat(harness: Harness) -> Heartbeat:
    """The running bot's heartbeat row, once its first tick has written it."""
    assert harness.bot.db is not None
    storage = harness.bot.db.storage
    for _ in range(200):
        beats = [b for b in await storage.list_heartbeats() if b.process_id == harness.bot.db.sync.process_id]
        if beats:
            return beats[0]
        await asyncio.sleep(0.05)
    pytest.fail("the bot wrote no heartbeat within 10 s")


def status_fields(harness_embed: dict[str, object]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in harness_embed["fields"]}  # type: ignore[attr-defined, index]


async def test_kb_status_lists_every_process_with_its_shards_version_and_last_heartbeat(
    db_harness: Harness, admin: FakeUser, storage_settings: StorageSettings
) -> None:
    mine = await own_heartbeat(db_harness)
    async with Storage(storage_settings) as storage:  # a process on another machine
        await storage.heartbeat(OTHER_PROCESS, "machine-b", (2, 3), "kb-older")

    exchange = await db_harness.slash(admin, "kb", subcommand="status")

    fields = status_fields(exchange.embed)
    lines = fields["Processes (2)"].splitlines()
    other = next(line for line in lines if OTHER_PROCESS in line)
    this = next(line for line in lines if mine.process_id in line)
    assert "shards 2, 3" in other and "`kb-older`" in other and other.endswith(" ago")
    assert "(this one)" in this and "unsharded" in this
    assert f"`{fields['KB version']}`" in this and mine.kb_version == fields["KB version"]


async def test_kb_status_without_a_database_lists_no_processes(harness: Harness, admin: FakeUser) -> None:
    exchange = await harness.slash(admin, "kb", subcommand="status")

    assert not [name for name in status_fields(exchange.embed) if name.startswith("Processes")]


@pytest.fixture
async def pg_storage_settings() -> AsyncIterator[StorageSettings]:
    server = pg_server()
    if server is None:
        pytest.skip(f"{PG_ENV} is not set (bash tests/storage/pg_server.sh start DIR prints one)")
    async with throwaway_database(server) as url:
        yield StorageSettings(_env_file=None, database_url=url)  # type: ignore[call-arg]


@pytest.fixture
async def pg_harness(
    fake_discord: FakeDiscord, settings: DiscordSettings, engine: Engine, pg_storage_settings: StorageSettings
) -> AsyncIterator[Harness]:
    async with bot_with_storage(fake_discord, settings, engine, pg_storage_settings) as harness:
        yield harness


async def test_kb_reload_with_postgresql_publishes_the_validated_files_for_the_other_processes(
    pg_harness: Harness, admin: FakeUser, kb_dir: Path, engine: Engine, pg_storage_settings: StorageSettings
) -> None:
    reword_one_passage(kb_dir / "knowledge")

    embed = (await pg_harness.slash(admin, "kb", subcommand="reload")).embed

    assert embed["title"].startswith("Knowledge base reloaded")
    async with Storage(pg_storage_settings) as storage:
        latest = await storage.latest_publication()
        assert latest is not None and latest.kb_version == engine.snapshot.version
        publication = await storage.fetch_publication(latest.id)
    assert publication is not None
    edited = (kb_dir / "knowledge" / "space-debris.yaml").read_text(encoding="utf-8")
    assert publication.files["space-debris.yaml"] == edited
    assert pg_harness.bot.db is not None and latest.published_by == pg_harness.bot.db.sync.process_id


@pytest.fixture
async def published_elsewhere(kb_dir: Path, tmp_path: Path, pg_storage_settings: StorageSettings) -> str:
    """Another process published this test's knowledge base with one passage reworded; its kb_version."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(kb_dir / "knowledge", elsewhere)
    reword_one_passage(elsewhere)
    knowledge = load_knowledge(elsewhere).knowledge
    assert knowledge is not None
    async with Storage(pg_storage_settings) as storage:
        await storage.publish_knowledge(knowledge.version, read_knowledge_files(elsewhere), by=OTHER_PROCESS)
    return knowledge.version


@pytest.fixture
async def harness_started_later(
    published_elsewhere: str, fake_discord: FakeDiscord, settings: DiscordSettings, engine: Engine,
    pg_storage_settings: StorageSettings,
) -> AsyncIterator[Harness]:
    async with bot_with_storage(fake_discord, settings, engine, pg_storage_settings) as harness:
        yield harness


async def test_a_bot_started_after_a_publication_serves_it_and_says_so_in_kb_status(
    harness_started_later: Harness, published_elsewhere: str, admin: FakeUser, engine: Engine
) -> None:
    for _ in range(400):
        if engine.snapshot.version == published_elsewhere:
            break
        await asyncio.sleep(0.05)
    assert engine.snapshot.version == published_elsewhere
    assert engine.last_reload_by == f"{OTHER_PROCESS} (published)"
    mine = await own_heartbeat(harness_started_later)
    assert mine.kb_version == published_elsewhere

    fields = status_fields((await harness_started_later.slash(admin, "kb", subcommand="status")).embed)

    assert fields["KB version"] == published_elsewhere
    assert f"`{published_elsewhere}`" in fields["Processes (1)"]


def test_the_process_list_puts_this_process_first_and_counts_the_ones_it_leaves_out() -> None:
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    beats = [
        Heartbeat(f"host-{n:02d}:1:aaaa", f"host-{n:02d}", (n,), "kb-1", now, now - dt.timedelta(seconds=n))
        for n in range(MAX_PROCESS_LINES + 3)
    ]

    lines = process_lines(beats, this_process="host-10:1:aaaa", now=now).splitlines()

    assert lines[0] == "`host-10:1:aaaa` (this one) · shards 10 · `kb-1` · 10 s ago"
    assert lines[1].startswith("`host-00:1:aaaa` · shards 0 ·")
    assert len(lines) == MAX_PROCESS_LINES + 1 and lines[-1] == "and 3 more"
