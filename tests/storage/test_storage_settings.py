"""Per-server settings and process heartbeats, on both backends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.storage import GuildSettings, GuildSettingsCache, Storage, StorageUnavailableError
from tests.storage.support import FakeClock, storage_settings


async def test_a_server_never_configured_gets_the_defaults(storage: Storage) -> None:
    settings = await storage.get_guild_settings(7)
    assert settings == GuildSettings(guild_id=7)
    assert (settings.answer_mentions, settings.ephemeral_default, settings.feedback_buttons) == ("all", False, True)
    assert await storage.list_guild_settings() == []


async def test_saved_settings_read_back_whole_with_64_bit_ids(storage: Storage) -> None:
    big = 1_234_567_890_123_456_789  # Discord ids use all 63 bits
    saved = GuildSettings(
        guild_id=big, answer_mentions="listed", mention_channel_ids=(big + 1, big + 2), ephemeral_default=True,
        moderator_role_ids=(big + 3,), feedback_buttons=False, log_channel_id=big + 4,
    )
    assert await storage.set_guild_settings(saved) == saved
    assert await storage.get_guild_settings(big) == saved
    assert await storage.list_guild_settings() == [saved]


async def test_updating_some_fields_keeps_the_others(storage: Storage) -> None:
    await storage.set_guild_settings(GuildSettings(guild_id=7, moderator_role_ids=(11,), log_channel_id=99))
    updated = await storage.update_guild_settings(7, answer_mentions="none", mention_channel_ids=[5])
    assert (updated.answer_mentions, updated.mention_channel_ids) == ("none", (5,))
    assert (updated.moderator_role_ids, updated.log_channel_id) == ((11,), 99)
    assert await storage.get_guild_settings(7) == updated
    assert (await storage.update_guild_settings(8, ephemeral_default=True)).ephemeral_default is True


async def test_bad_settings_are_refused_before_reaching_the_database(storage: Storage) -> None:
    with pytest.raises(ValueError, match="answer_mentions"):
        GuildSettings(guild_id=7, answer_mentions="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="guild_id"):
        await storage.update_guild_settings(7, guild_id=8)


def test_mentions_are_answered_where_the_setting_says() -> None:
    listed = GuildSettings(guild_id=7, answer_mentions="listed", mention_channel_ids=(70,))
    assert listed.answers_mentions_in(70) and not listed.answers_mentions_in(71)
    assert GuildSettings(guild_id=7).answers_mentions_in(71)
    assert not GuildSettings(guild_id=7, answer_mentions="none").answers_mentions_in(70)


async def test_heartbeats_record_each_process_and_renew_in_place(storage: Storage, clock: FakeClock) -> None:
    started = clock.now
    await storage.heartbeat("host-a:100", "host-a", (0, 1), "kb-1")
    await storage.heartbeat("host-b:200", "host-b", (2, 3), "kb-1")
    clock.advance(seconds=30)
    renewed = await storage.heartbeat("host-a:100", "host-a", (0, 1), "kb-2")
    assert (renewed.started_at, renewed.last_seen, renewed.kb_version) == (started, clock.now, "kb-2")
    beats = await storage.list_heartbeats()
    assert [(b.process_id, b.shard_ids, b.kb_version) for b in beats] == [
        ("host-a:100", (0, 1), "kb-2"), ("host-b:200", (2, 3), "kb-1")
    ]


async def test_stale_or_stopped_processes_can_be_removed(storage: Storage, clock: FakeClock) -> None:
    await storage.heartbeat("old", "host-a")
    clock.advance(minutes=10)
    await storage.heartbeat("live", "host-b")
    await storage.heartbeat("stopping", "host-c")
    assert await storage.remove_heartbeats(older_than=dt.timedelta(minutes=5)) == 1
    assert await storage.remove_heartbeats("stopping") == 1
    assert [b.process_id for b in await storage.list_heartbeats()] == ["live"]


async def test_the_settings_cache_answers_from_memory_and_writes_through(database_url: str) -> None:
    async with Storage(storage_settings(database_url)) as storage:
        await storage.set_guild_settings(GuildSettings(guild_id=7, ephemeral_default=True))
        cache = GuildSettingsCache(storage)
        assert cache.get(7).ephemeral_default is False  # not loaded yet: the defaults
        assert await cache.load()
        assert cache.get(7).ephemeral_default is True and cache.get(8) == GuildSettings(guild_id=8)
        await cache.update(8, feedback_buttons=False)
        assert cache.get(8).feedback_buttons is False
        assert (await storage.get_guild_settings(8)).feedback_buttons is False
        await storage.update_guild_settings(7, answer_mentions="none")  # another process's change
        assert cache.get(7).answer_mentions == "all"
        assert (await cache.refresh(7)).answer_mentions == "none" and cache.get(7).answer_mentions == "none"


async def test_the_settings_cache_keeps_serving_defaults_when_the_database_is_down(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    storage = Storage(storage_settings(f"sqlite+aiosqlite:///{blocker}/db.sqlite"))
    cache = GuildSettingsCache(storage)
    assert await cache.load() is False
    assert cache.get(7) == GuildSettings(guild_id=7)
    with pytest.raises(StorageUnavailableError):
        await cache.update(7, ephemeral_default=True)
    assert cache.get(7).ephemeral_default is False
    await storage.close()
