"""Feedback buttons under answers: votes recorded (and replaced), the note modal, the moderator log
channel, buttons after a restart, and answers that never wait on a database that is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from discord_harness import QUESTION, ErrorLog, Harness
from fake_components import button_ids
from fake_discord import GUILD_ID, FakeDiscord, FakeUser
from storage_harness import ask_for_answer, bot_with_storage, stored_votes, vote

from bot.core.engine import Engine
from bot.discord_bot.config import DiscordSettings
from bot.discord_bot.feedback import NOT_RECORDED, RECORDED
from bot.storage import StorageSettings

LOG_CHANNEL_ID = 900000000000000099
FEEDBACK_BUTTONS = ["spacebot:fb:helpful", "spacebot:fb:wrong", "spacebot:fb:outdated", "spacebot:fb:bad_source"]


async def test_answers_carry_the_four_feedback_buttons(db_harness: Harness, member: FakeUser) -> None:
    message = await ask_for_answer(db_harness, member)

    assert button_ids(message) == FEEDBACK_BUTTONS


async def test_helpful_click_is_recorded_and_a_second_click_replaces_the_vote(
    db_harness: Harness, member: FakeUser, storage_settings: StorageSettings
) -> None:
    message = await ask_for_answer(db_harness, member)

    assert await vote(db_harness, member, message, "helpful") == RECORDED
    first = await stored_votes(storage_settings)
    assert await vote(db_harness, member, message, "outdated") == RECORDED
    second = await stored_votes(storage_settings)

    assert [(v.vote, v.question, v.message_id) for v in first] == [("helpful", QUESTION, int(message["id"]))]
    assert first[0].lead_passage_id and first[0].lead_passage_id in first[0].passage_ids
    assert first[0].kb_version != "unknown"
    assert [(v.vote, v.id) for v in second] == [("outdated", first[0].id)]


async def test_wrong_opens_a_modal_and_stores_its_note(
    db_harness: Harness, member: FakeUser, storage_settings: StorageSettings
) -> None:
    message = await ask_for_answer(db_harness, member)

    reply = await vote(db_harness, member, message, "wrong", "Russia changed its date in 2026.")

    assert reply == RECORDED
    [report] = await stored_votes(storage_settings)
    assert (report.vote, report.note, report.status) == ("wrong", "Russia changed its date in 2026.", "open")
    assert report.message_link and report.message_link.endswith(f"/{message['id']}")


async def test_a_new_report_is_posted_to_the_servers_log_channel(db_harness: Harness, member: FakeUser) -> None:
    assert db_harness.bot.db is not None
    await db_harness.bot.db.guild_settings.update(GUILD_ID, log_channel_id=LOG_CHANNEL_ID)
    message = await ask_for_answer(db_harness, member)

    await vote(db_harness, member, message, "bad_source", "dead link")
    [post] = await db_harness.fake.wait_for(lambda r: r.path == f"channels/{LOG_CHANNEL_ID}/messages")

    [embed] = post.body["embeds"]
    assert "Bad source" in embed["title"] and embed["description"] == QUESTION
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert message["id"] in fields["Answer"] and "`" in fields["Passages (lead first)"]
    assert fields["Note"] == "dead link"


async def test_a_helpful_vote_is_not_posted_to_the_log_channel(db_harness: Harness, member: FakeUser) -> None:
    assert db_harness.bot.db is not None
    await db_harness.bot.db.guild_settings.update(GUILD_ID, log_channel_id=LOG_CHANNEL_ID)
    message = await ask_for_answer(db_harness, member)

    assert await vote(db_harness, member, message, "helpful") == RECORDED

    assert not db_harness.fake.sent("POST", f"channels/{LOG_CHANNEL_ID}/messages")


async def test_a_server_can_turn_the_buttons_off(db_harness: Harness, member: FakeUser) -> None:
    assert db_harness.bot.db is not None
    await db_harness.bot.db.guild_settings.update(GUILD_ID, feedback_buttons=False)

    message = await ask_for_answer(db_harness, member)

    assert button_ids(message) == []


async def test_buttons_sent_before_a_restart_still_record_votes(
    fake_discord: FakeDiscord, settings: DiscordSettings, engine: Engine, storage_settings: StorageSettings,
    member: FakeUser,
) -> None:
    async with bot_with_storage(fake_discord, settings, engine, storage_settings) as first_run:
        message = await ask_for_answer(first_run, member)

    async with bot_with_storage(fake_discord, settings, engine, storage_settings) as second_run:
        reply = await vote(second_run, member, message, "helpful")

    assert reply == RECORDED
    assert [v.vote for v in await stored_votes(storage_settings)] == ["helpful"]


@pytest.fixture
async def harness_without_database(
    fake_discord: FakeDiscord, settings: DiscordSettings, engine: Engine, tmp_path: Path
) -> AsyncIterator[Harness]:
    """A bot whose database cannot be opened: its folder would have to be inside a regular file."""
    (tmp_path / "a-file").write_text("not a folder")
    unreachable = StorageSettings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/a-file/spacebot.db", database_timeout=1.0
    )
    async with bot_with_storage(fake_discord, settings, engine, unreachable) as harness:
        yield harness


async def test_database_down_the_question_is_still_answered_and_a_click_says_not_recorded(
    harness_without_database: Harness, member: FakeUser, error_log: ErrorLog, caplog: pytest.LogCaptureFixture
) -> None:
    harness = harness_without_database
    message = await ask_for_answer(harness, member)
    reply = await vote(harness, member, message, "helpful")
    assert harness.bot.db is not None
    await harness.bot.db.queue.drain(5)

    assert message["embeds"][0]["title"] == QUESTION
    assert reply == NOT_RECORDED
    logged = caplog.get_records("setup") + caplog.records  # the database is opened while the bot starts
    warnings = [r for r in logged if "database unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert error_log.take(r"storage write answer records not recorded")
