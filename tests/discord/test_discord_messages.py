"""Mentions, DMs and the "Ask the bot about this" message menu."""

from __future__ import annotations

import re

import pytest
from discord_harness import ErrorLog, Harness, replies_to, running_bot
from fake_discord import BOT_ID, CHANNEL_ID, DM_CHANNEL_ID, FakeDiscord, FakeUser

from bot.core.engine import Engine
from bot.core.models import Answer
from bot.discord_bot.cogs.ask import CONTEXT_MENU_NAME
from bot.discord_bot.config import DiscordSettings

QUESTION = "when is Russia leaving the ISS?"


async def test_mention_is_answered_as_a_reply_without_pinging_the_author(harness: Harness, member: FakeUser) -> None:
    message = harness.fake.user_message(member, f"<@{BOT_ID}> {QUESTION}", mention_bot=True)
    [reply] = await harness.say(message)

    assert reply.path == f"channels/{CHANNEL_ID}/messages"
    assert str(reply.body["message_reference"]["message_id"]) == message["id"]
    assert reply.body["allowed_mentions"] == {"parse": [], "replied_user": False}
    embed = reply.body["embeds"][0]
    assert embed["title"] == QUESTION  # the mention is stripped from the question
    assert embed["fields"][0]["name"].startswith("[1] ")


async def test_dm_is_answered_in_the_dm_channel(harness: Harness, member: FakeUser) -> None:
    message = harness.fake.user_message(member, QUESTION, dm=True)
    [reply] = await harness.say(message)

    assert reply.path == f"channels/{DM_CHANNEL_ID}/messages"
    assert reply.body["embeds"][0]["title"] == QUESTION


async def test_guild_message_without_a_mention_and_bot_messages_are_ignored(harness: Harness, member: FakeUser) -> None:
    plain = harness.fake.user_message(member, QUESTION)
    assert plain["content"] == ""  # Discord blanks it: the bot has no message_content intent
    other_bot = FakeUser(800000000000000001, "other-bot", bot=True)
    from_bot = harness.fake.user_message(other_bot, f"<@{BOT_ID}> {QUESTION}", mention_bot=True)
    await harness.say(plain, replies=0)
    await harness.say(from_bot, replies=0)
    mention = harness.fake.user_message(member, f"<@{BOT_ID}> {QUESTION}", mention_bot=True)
    await harness.say(mention)

    sent = harness.fake.sent("POST", "channels/*/messages")
    assert [r for r in sent if replies_to(r, mention["id"])]
    assert not [r for r in sent if replies_to(r, plain["id"]) or replies_to(r, from_bot["id"])]
    assert len(sent) == 1


async def test_mention_with_everyone_in_it_pings_nobody(harness: Harness, member: FakeUser) -> None:
    message = harness.fake.user_message(member, f"<@{BOT_ID}> @everyone {QUESTION}", mention_bot=True)
    [reply] = await harness.say(message)

    assert reply.body["allowed_mentions"] == {"parse": [], "replied_user": False}
    assert "@everyone" in reply.body["embeds"][0]["title"]


async def test_context_menu_answers_from_the_target_message_text(harness: Harness, member: FakeUser) -> None:
    target = harness.fake.user_message(FakeUser(700000000000000099, "someone"), QUESTION)
    target["content"] = QUESTION  # interactions carry the resolved message's content
    exchange = await harness.interact(harness.fake.context_menu_payload(member, CONTEXT_MENU_NAME, target))

    assert exchange.callback_type == 5
    assert exchange.embed["title"] == QUESTION
    assert exchange.embed["fields"][0]["name"].startswith("[1] ")


async def test_mention_cooldown_notice_goes_to_the_user_by_dm(
    fake_discord: FakeDiscord, cooldown_settings: DiscordSettings, engine: Engine, member: FakeUser
) -> None:
    async with running_bot(fake_discord, cooldown_settings, engine=engine) as harness:
        for _ in range(cooldown_settings.cooldown_rate):
            await harness.say(fake_discord.user_message(member, f"<@{BOT_ID}> {QUESTION}", mention_bot=True))
        limited = fake_discord.user_message(member, f"<@{BOT_ID}> {QUESTION}", mention_bot=True)
        await fake_discord.dispatch("MESSAGE_CREATE", limited)
        [notice] = await fake_discord.wait_for(lambda r: r.path == f"channels/{DM_CHANNEL_ID}/messages")

    assert "Try again in" in notice.body["content"]
    assert int(fake_discord.sent("POST", "users/@me/channels")[0].body["recipient_id"]) == member.id
    assert not [r for r in fake_discord.sent("POST", "channels/*/messages") if replies_to(r, limited["id"])]


async def test_mention_engine_exception_replies_with_reference_and_logs_it(
    harness: Harness, member: FakeUser, monkeypatch: pytest.MonkeyPatch, error_log: ErrorLog
) -> None:
    engine = harness.bot.engine
    assert engine is not None

    async def broken_answer(question: str, k: int | None = None, context: object = ()) -> Answer:
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(engine, "answer_async", broken_answer)
    [reply] = await harness.say(harness.fake.user_message(member, f"<@{BOT_ID}> {QUESTION}", mention_bot=True))

    match = re.search(r"reference `(E[0-9A-F]{8})`", reply.body["content"])
    assert match, reply.body
    [record] = error_log.take(match.group(1))
    assert record.exc_info is not None and "encoder exploded" in str(record.exc_info[1])
