"""The per-server "answer every message in an answer thread" setting (revision 0002), on both backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bot.storage import GuildSettings, GuildSettingsCache, Storage
from bot.storage.database import alembic_config, create_engine, prepare_sqlite_folder
from tests.storage.support import storage_settings

COLUMN = "answer_every_thread_message"


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)
    return run


def _downgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)
    return run


def _guild_settings_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("guild_settings")}


async def test_the_setting_is_off_by_default_and_saved_when_turned_on(storage: Storage) -> None:
    assert (await storage.get_guild_settings(7)).answer_every_thread_message is False
    updated = await storage.update_guild_settings(7, answer_every_thread_message=True)
    assert updated.answer_every_thread_message is True
    assert (await storage.get_guild_settings(7)).answer_every_thread_message is True
    assert (await storage.get_guild_settings(8)).answer_every_thread_message is False
    turned_off = await storage.update_guild_settings(7, answer_every_thread_message=False)
    assert turned_off.answer_every_thread_message is False
    assert await storage.list_guild_settings() == [GuildSettings(guild_id=7)]


async def test_the_settings_cache_serves_the_setting_after_an_update(database_url: str) -> None:
    async with Storage(storage_settings(database_url)) as storage:
        cache = GuildSettingsCache(storage)
        await cache.update(7, answer_every_thread_message=True)
        assert cache.get(7).answer_every_thread_message is True
        reloaded = GuildSettingsCache(storage)
        assert await reloaded.load()
        assert reloaded.get(7).answer_every_thread_message is True


async def test_servers_configured_before_revision_0002_keep_the_old_behaviour(empty_database_url: str) -> None:
    prepare_sqlite_folder(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to("0001"))
            assert COLUMN not in await connection.run_sync(_guild_settings_columns)
            await connection.execute(text(
                "INSERT INTO guild_settings (guild_id, answer_mentions, mention_channel_ids, ephemeral_default,"
                " moderator_role_ids, feedback_buttons, log_channel_id, updated_at)"
                " VALUES (7, 'none', '[]', true, '[]', false, NULL, :now)"
            ), {"now": dt.datetime(2026, 3, 2, 12, 0)})
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to("0002"))
            assert COLUMN in await connection.run_sync(_guild_settings_columns)
    finally:
        await engine.dispose()
    async with Storage(storage_settings(empty_database_url)) as storage:
        settings = await storage.get_guild_settings(7)
    assert (settings.answer_mentions, settings.ephemeral_default, settings.answer_every_thread_message) == (
        "none", True, False
    )


async def test_downgrading_revision_0002_removes_the_column_and_keeps_the_rows(empty_database_url: str) -> None:
    async with Storage(storage_settings(empty_database_url)) as storage:
        await storage.update_guild_settings(7, answer_every_thread_message=True, answer_mentions="none")
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade_to("0001"))
        async with engine.connect() as connection:
            assert COLUMN not in await connection.run_sync(_guild_settings_columns)
            kept = (await connection.execute(text("SELECT answer_mentions FROM guild_settings"))).scalars().all()
        assert kept == ["none"]
    finally:
        await engine.dispose()
