"""Follow-up questions end to end (issue 12): replies, threads, DMs and forgetting after an hour.

The real engine decides whether a question follows up; these tests check what the bot gives it as
context and what it shows: "Following up on: …" in small print, or a "please ask in full" decline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from discord_harness import Harness, make_settings, replies_to, serving
from fake_discord import (
    APP_ID,
    BOT_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    GUILD_ID,
    FakeDiscord,
    FakeUser,
    Recorded,
    now_iso,
    snowflake,
)
from storage_harness import bot_with_storage

from bot.core.engine import Engine
from bot.discord_bot.cogs.ask import (
    NO_THREAD_HERE,
    THREAD_REFUSED,
    THREAD_WELCOME,
    THREAD_WELCOME_EVERY_MESSAGE,
    Ask,
)
from bot.discord_bot.cogs.server_settings import EVERY_MESSAGE_WITHOUT_INTENT
from bot.discord_bot.config import DiscordSettings
from bot.discord_bot.conversations import IDLE_SECONDS, ConversationMemory
from bot.discord_bot.embeds import DECLINE_TITLES, FOLLOW_UP_PREFIX
from bot.storage import StorageSettings

QUESTION = "When is Russia leaving the ISS?"
FOLLOW_UP = "who will deorbit it?"  # the real engine declines it as not understood without context
STANDALONE = "what did Borisov say in 2022?"  # stands on its own even after QUESTION
FOLLOWING_UP_ON_QUESTION = f"-# {FOLLOW_UP_PREFIX}{QUESTION}"
NOT_UNDERSTOOD_TITLE = DECLINE_TITLES["not_understood"]


class ThreadingFakeDiscord(FakeDiscord):
    """The fake Discord plus what threads need: starting a thread from a message (the thread gets the
    message's id and a THREAD_CREATE goes out, as on Discord), and the id of every message it created."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_threads = False
        self.created: list[tuple[str, dict[str, Any]]] = []  # (request path, message) per message the bot sent
        self._routes.append(("POST", "channels/*/messages/*/threads", self._start_thread))

    async def _create_message(self, request: web.Request, tail: str, body: Any) -> web.Response:
        response = await super()._create_message(request, tail, body)
        assert isinstance(response.body, bytes)
        message = json.loads(response.body)
        message["message_reference"] = (body or {}).get("message_reference")
        self.created.append((tail, message))
        return response

    async def _start_thread(self, request: web.Request, tail: str, body: Any) -> web.Response:
        if self.refuse_threads:
            return _json_response({"message": "Missing Permissions", "code": 50013}, status=403)
        _, parent_id, _, message_id, _ = tail.split("/")
        thread = thread_payload(int(message_id), int(parent_id), body["name"])
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json_response(thread)

    def reply_sent_to(self, message_id: str) -> dict[str, Any]:
        """The message the bot sent in reply to ``message_id``."""
        replies = [m for _, m in self.created if str((m["message_reference"] or {}).get("message_id")) == message_id]
        assert len(replies) == 1, f"expected one reply to {message_id}, got {replies}"
        return replies[0]

    def sent_through(self, token: str) -> list[dict[str, Any]]:
        """The messages the bot sent as follow-ups of the interaction with this token, in order."""
        return [m for path, m in self.created if path == f"webhooks/{APP_ID}/{token}"]


def _json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def thread_payload(thread_id: int, parent_id: int, name: str) -> dict[str, Any]:
    return {
        "id": str(thread_id),
        "guild_id": str(GUILD_ID),
        "parent_id": str(parent_id),
        "owner_id": str(BOT_ID),
        "name": name,
        "type": 11,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": now_iso(),
            "locked": False,
        },
    }


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ThreadingFakeDiscord]:
    """Overrides conftest's fake with the threading one (the harness fixture picks it up)."""
    fake = ThreadingFakeDiscord()
    async with serving(fake, monkeypatch):
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def ask_cog_on_clock(harness: Harness, clock: ManualClock) -> Ask:
    """The running bot's Ask cog, its conversation memory on the test's clock."""
    ask = harness.bot.get_cog("Ask")
    # load_extension imports the cog module afresh, so its class is not this module's ``Ask``
    assert type(ask).__name__ == Ask.__name__ and isinstance(ask.conversations, ConversationMemory)
    ask.conversations = ConversationMemory(clock=clock)
    return ask  # type: ignore[no-any-return]


@pytest.fixture
def cog(harness: Harness, clock: ManualClock) -> Ask:
    return ask_cog_on_clock(harness, clock)


def mention(fake: FakeDiscord, user: FakeUser, text: str, *, channel_id: int = CHANNEL_ID) -> dict[str, Any]:
    message = fake.user_message(user, f"<@{BOT_ID}> {text}", mention_bot=True)
    message["channel_id"] = str(channel_id)
    return message


def reply(fake: FakeDiscord, user: FakeUser, text: str, target: dict[str, Any]) -> dict[str, Any]:
    """A reply to ``target`` as Discord delivers it: it pings the replied-to bot, so the bot sees the text."""
    message = fake.user_message(user, text, mention_bot=True)
    message["type"] = 19
    message["message_reference"] = {"message_id": target["id"], "channel_id": target["channel_id"],
                                    "guild_id": str(GUILD_ID)}
    message["referenced_message"] = target
    return message


async def until(condition: Callable[[], bool], seconds: float = 10.0, step: float = 0.01) -> None:
    """Wait until ``condition()`` holds (the bot records a conversation just after sending its reply)."""
    for _ in range(int(seconds / step)):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"still not true after {seconds} s: {condition}")


async def ask_and_settle(harness: Harness, cog: Ask, message: dict[str, Any]) -> Recorded:
    """Send ``message``; return the bot's reply once the bot has also remembered it (the reply reaches
    the fake Discord a moment before the bot records it, and the next question must see it)."""
    [sent] = await harness.say(message)
    fake = harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    await until(lambda: any(str((m["message_reference"] or {}).get("message_id")) == message["id"]
                            for _, m in fake.created))
    reply_id = int(fake.reply_sent_to(message["id"])["id"])
    await until(lambda: cog.conversations.answer_context(reply_id) is not None)
    return sent


def description(request_body: dict[str, Any]) -> str:
    return str(request_body["embeds"][0].get("description") or "")


# -- replies ------------------------------------------------------------------------------------
async def test_reply_to_an_answer_follows_up_on_its_question_and_shows_it_in_small_print(
    harness: Harness, cog: Ask, member: FakeUser
) -> None:
    fake = harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    first = mention(fake, member, QUESTION)
    answer = await ask_and_settle(harness, cog, first)
    assert FOLLOW_UP_PREFIX not in description(answer.body)  # a question on its own says nothing of the sort

    follow_up = reply(fake, member, FOLLOW_UP, fake.reply_sent_to(first["id"]))
    second = await ask_and_settle(harness, cog, follow_up)

    embed = second.body["embeds"][0]
    assert embed["title"] == FOLLOW_UP
    assert embed["description"].splitlines()[0] == FOLLOWING_UP_ON_QUESTION
    assert embed["fields"][0]["name"].startswith("[1] ")  # answered, with sources
    second_id = int(fake.reply_sent_to(follow_up["id"])["id"])
    assert cog.conversations.answer_context(second_id) == (QUESTION, FOLLOW_UP)


async def test_same_follow_up_as_a_plain_mention_in_a_channel_stands_alone_and_is_not_understood(
    harness: Harness, cog: Ask, member: FakeUser
) -> None:
    await ask_and_settle(harness, cog, mention(harness.fake, member, QUESTION))
    reply_to_fragment = await ask_and_settle(harness, cog, mention(harness.fake, member, FOLLOW_UP))

    embed = reply_to_fragment.body["embeds"][0]
    assert embed["title"] == NOT_UNDERSTOOD_TITLE
    assert FOLLOW_UP_PREFIX not in embed["description"]


async def test_reply_chain_carries_every_question_and_a_standalone_reply_is_not_bent(
    harness: Harness, cog: Ask, member: FakeUser
) -> None:
    fake = harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    first = mention(fake, member, QUESTION)
    await ask_and_settle(harness, cog, first)
    second = reply(fake, member, FOLLOW_UP, fake.reply_sent_to(first["id"]))
    await ask_and_settle(harness, cog, second)
    third = reply(fake, member, STANDALONE, fake.reply_sent_to(second["id"]))
    answer = await ask_and_settle(harness, cog, third)

    assert answer.body["embeds"][0]["title"] == STANDALONE
    assert FOLLOW_UP_PREFIX not in description(answer.body)
    third_id = int(fake.reply_sent_to(third["id"])["id"])
    assert cog.conversations.answer_context(third_id) == (QUESTION, FOLLOW_UP, STANDALONE)


async def test_reply_to_an_answer_sent_before_a_restart_follows_up_on_the_question_in_its_title(
    harness: Harness, cog: Ask, member: FakeUser, clock: ManualClock
) -> None:
    fake = harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    first = mention(fake, member, QUESTION)
    await ask_and_settle(harness, cog, first)
    cog.conversations = ConversationMemory(clock=clock)  # what a restart leaves: nothing

    second = await ask_and_settle(harness, cog, reply(fake, member, FOLLOW_UP, fake.reply_sent_to(first["id"])))

    assert description(second.body).splitlines()[0] == FOLLOWING_UP_ON_QUESTION


# -- threads ------------------------------------------------------------------------------------
async def test_ask_thread_option_opens_a_thread_where_a_mention_follows_up(
    harness: Harness, cog: Ask, member: FakeUser
) -> None:
    fake = harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    payload = fake.slash_payload(member, "ask", [{"type": 3, "name": "question", "value": QUESTION},
                                                 {"type": 5, "name": "thread", "value": True}])
    exchange = await harness.interact(payload)
    [answer] = fake.sent_through(payload["token"])
    [start] = await fake.wait_for(lambda r: r.method == "POST" and r.path.endswith("/threads"))
    [welcome] = await fake.wait_for(lambda r: r.path == f"channels/{answer['id']}/messages")

    assert exchange.embed["title"] == QUESTION
    assert start.path == f"channels/{CHANNEL_ID}/messages/{answer['id']}/threads"
    assert start.body["name"] == QUESTION
    assert welcome.body["content"] == THREAD_WELCOME
    thread_id = int(answer["id"])  # a thread started from a message has the message's id
    in_thread = mention(fake, member, FOLLOW_UP, channel_id=thread_id)
    follow_up = await ask_and_settle(harness, cog, in_thread)

    assert follow_up.path == f"channels/{thread_id}/messages"
    assert follow_up.body["embeds"][0]["title"] == FOLLOW_UP
    assert description(follow_up.body).splitlines()[0] == FOLLOWING_UP_ON_QUESTION
    assert cog.conversations.context(thread_id) == (QUESTION, FOLLOW_UP)


async def test_thread_option_on_a_private_answer_opens_no_thread_and_says_why(
    harness: Harness, cog: Ask, member: FakeUser
) -> None:
    exchange = await harness.slash(member, "ask", {"question": QUESTION, "private": True, "thread": True},
                                   followups=2)

    assert exchange.followups[0].body["embeds"][0]["title"] == QUESTION
    assert exchange.followups[1].body["content"] == NO_THREAD_HERE
    assert int(exchange.followups[1].body["flags"]) & 64
    assert not harness.fake.sent("POST", "channels/*/messages/*/threads")


async def test_thread_refused_by_discord_still_answers_and_tells_the_user_privately(
    harness: Harness, cog: Ask, member: FakeUser
) -> None:
    fake = harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    fake.refuse_threads = True
    exchange = await harness.slash(member, "ask", {"question": QUESTION, "thread": True}, followups=2)

    assert exchange.followups[0].body["embeds"][0]["title"] == QUESTION
    assert exchange.followups[1].body["content"] == THREAD_REFUSED
    assert int(exchange.followups[1].body["flags"]) & 64


async def test_mention_in_a_thread_a_user_started_from_an_answer_follows_up_on_it(
    harness: Harness, cog: Ask, member: FakeUser
) -> None:
    fake = harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    first = mention(fake, member, QUESTION)
    await ask_and_settle(harness, cog, first)
    thread_id = int(fake.reply_sent_to(first["id"])["id"])  # the user opened a thread on the bot's answer
    await fake.dispatch("THREAD_CREATE", {**thread_payload(thread_id, CHANNEL_ID, "russia"), "newly_created": True})

    follow_up = await ask_and_settle(harness, cog, mention(fake, member, FOLLOW_UP, channel_id=thread_id))

    assert description(follow_up.body).splitlines()[0] == FOLLOWING_UP_ON_QUESTION


# -- DMs and expiry -----------------------------------------------------------------------------
async def test_dm_is_one_conversation_a_follow_up_needs_no_reply(harness: Harness, cog: Ask, member: FakeUser) -> None:
    fake = harness.fake
    await ask_and_settle(harness, cog, fake.user_message(member, QUESTION, dm=True))
    follow_up = await ask_and_settle(harness, cog, fake.user_message(member, FOLLOW_UP, dm=True))

    assert follow_up.path == f"channels/{DM_CHANNEL_ID}/messages"
    assert follow_up.body["embeds"][0]["title"] == FOLLOW_UP
    assert description(follow_up.body).splitlines()[0] == FOLLOWING_UP_ON_QUESTION
    assert cog.conversations.context(DM_CHANNEL_ID) == (QUESTION, FOLLOW_UP)


async def test_dm_conversation_is_forgotten_after_an_hour_of_silence(
    harness: Harness, cog: Ask, member: FakeUser, clock: ManualClock
) -> None:
    fake = harness.fake
    await ask_and_settle(harness, cog, fake.user_message(member, QUESTION, dm=True))
    clock.advance(IDLE_SECONDS - 1)  # not yet an hour: still the same conversation
    still = await ask_and_settle(harness, cog, fake.user_message(member, FOLLOW_UP, dm=True))
    assert description(still.body).splitlines()[0] == FOLLOWING_UP_ON_QUESTION

    clock.advance(IDLE_SECONDS)
    forgotten = await ask_and_settle(harness, cog, fake.user_message(member, FOLLOW_UP, dm=True))

    embed = forgotten.body["embeds"][0]
    assert embed["title"] == NOT_UNDERSTOOD_TITLE
    assert FOLLOW_UP_PREFIX not in embed["description"]
    assert cog.conversations.context(DM_CHANNEL_ID) == ()  # a fragment nobody could place is not remembered


async def test_ask_in_a_dm_continues_the_dm_conversation(harness: Harness, cog: Ask, member: FakeUser) -> None:
    fake = harness.fake
    await ask_and_settle(harness, cog, fake.user_message(member, QUESTION, dm=True))
    payload = fake._interaction_base(member, guild=False)  # /ask in the DM channel
    payload["type"] = 2
    payload["data"] = {"id": "1", "name": "ask", "type": 1,
                       "options": [{"type": 3, "name": "question", "value": FOLLOW_UP}]}
    exchange = await harness.interact(payload)

    assert exchange.embed["title"] == FOLLOW_UP
    assert exchange.embed["description"].splitlines()[0] == FOLLOWING_UP_ON_QUESTION


# -- the server setting "answer every message in answer threads" (issue 11) -----------------------
EVERY_MESSAGE_FIELD = "Answers every message in threads started from its answers"
NO_REPLY_GRACE_SECONDS = 0.3  # a wrong reply would follow its message's own turn within milliseconds


@pytest.fixture
def reading_settings(kb_dir: Path) -> DiscordSettings:
    """The bot with Discord's Message Content intent (SPACEBOT_MESSAGE_CONTENT=true)."""
    return make_settings(kb_dir, message_content=True)


@pytest.fixture
async def reading_harness(
    fake_discord: ThreadingFakeDiscord, reading_settings: DiscordSettings, engine: Engine,
    storage_settings: StorageSettings,
) -> AsyncIterator[Harness]:
    """A bot with a database that receives the text of every message (the fake blanks it otherwise)."""
    async with bot_with_storage(fake_discord, reading_settings, engine, storage_settings) as harness:
        yield harness


@pytest.fixture
def reading_cog(reading_harness: Harness, clock: ManualClock) -> Ask:
    return ask_cog_on_clock(reading_harness, clock)


def plain(fake: FakeDiscord, user: FakeUser, text: str, *, channel_id: int) -> dict[str, Any]:
    """A message that does not mention the bot; the bot sees its text only with the Message Content intent."""
    message = fake.user_message(user, text)
    message["channel_id"] = str(channel_id)
    return message


async def open_answer_thread(harness: Harness, user: FakeUser) -> tuple[int, str]:
    """``/ask thread:true`` on QUESTION; the thread's id and its welcome line."""
    fake = harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    payload = fake.slash_payload(user, "ask", [{"type": 3, "name": "question", "value": QUESTION},
                                               {"type": 5, "name": "thread", "value": True}])
    await harness.interact(payload)
    [answer] = fake.sent_through(payload["token"])
    [welcome] = await fake.wait_for(lambda r: r.path == f"channels/{answer['id']}/messages")
    return int(answer["id"]), str(welcome.body["content"])  # the thread has its starting message's id


async def set_every_thread_message(harness: Harness, admin: FakeUser, value: bool) -> str:
    """Change the setting with /settings; what the settings embed says of it afterwards."""
    exchange = await harness.slash(admin, "settings", {"every_thread_message": value})
    return str({f["name"]: f["value"] for f in exchange.embed["fields"]}[EVERY_MESSAGE_FIELD])


async def assert_unanswered(harness: Harness, cog: Ask, ignored: list[dict[str, Any]], barrier: dict[str, Any]) -> None:
    """Send ``ignored`` then the mention ``barrier``; once the barrier is answered (and a grace period
    has passed), none of ``ignored`` has a reply."""
    for message in ignored:
        await harness.say(message, replies=0)
    await ask_and_settle(harness, cog, barrier)
    await asyncio.sleep(NO_REPLY_GRACE_SECONDS)
    for message in ignored:
        assert not [r for r in harness.fake.requests if replies_to(r, message["id"])], f"replied to {message}"


async def test_with_the_setting_off_a_plain_message_in_an_answer_thread_gets_no_reply(
    reading_harness: Harness, reading_cog: Ask, member: FakeUser
) -> None:
    fake = reading_harness.fake
    thread_id, welcome = await open_answer_thread(reading_harness, member)
    unmentioned = plain(fake, member, FOLLOW_UP, channel_id=thread_id)
    assert unmentioned["content"] == FOLLOW_UP  # the bot receives the text: the setting alone decides

    await assert_unanswered(reading_harness, reading_cog, [unmentioned],
                            barrier=mention(fake, member, FOLLOW_UP, channel_id=thread_id))

    assert welcome == THREAD_WELCOME
    assert reading_cog.conversations.context(thread_id) == (QUESTION, FOLLOW_UP)  # the mention only


async def test_after_settings_turns_it_on_a_plain_message_in_an_answer_thread_is_answered_as_a_follow_up(
    reading_harness: Harness, reading_cog: Ask, member: FakeUser, admin: FakeUser, storage_settings: StorageSettings
) -> None:
    fake = reading_harness.fake
    thread_id, _ = await open_answer_thread(reading_harness, member)

    shown = await set_every_thread_message(reading_harness, admin, True)
    follow_up = await ask_and_settle(reading_harness, reading_cog, plain(fake, member, FOLLOW_UP, channel_id=thread_id))

    assert shown == "on"
    assert follow_up.path == f"channels/{thread_id}/messages"
    assert follow_up.body["embeds"][0]["title"] == FOLLOW_UP
    assert description(follow_up.body).splitlines()[0] == FOLLOWING_UP_ON_QUESTION
    assert reading_cog.conversations.context(thread_id) == (QUESTION, FOLLOW_UP)
    db = reading_harness.bot.db
    assert db is not None and (await db.storage.get_guild_settings(GUILD_ID)).answer_every_thread_message
    assert await set_every_thread_message(reading_harness, admin, False) == "off (mentions only)"
    assert not db.guild_settings.get(GUILD_ID).answer_every_thread_message


async def test_with_the_setting_on_other_threads_and_channels_still_need_a_mention(
    reading_harness: Harness, reading_cog: Ask, member: FakeUser, admin: FakeUser
) -> None:
    fake = reading_harness.fake
    assert isinstance(fake, ThreadingFakeDiscord)
    await set_every_thread_message(reading_harness, admin, True)
    answer_thread, welcome = await open_answer_thread(reading_harness, member)
    other_thread = int(snowflake())  # a thread a member started from a message of their own
    await fake.dispatch("THREAD_CREATE", {**thread_payload(other_thread, CHANNEL_ID, "chat"), "newly_created": True})
    no_text = plain(fake, member, "", channel_id=answer_thread)  # an image or a sticker

    await assert_unanswered(
        reading_harness, reading_cog,
        [plain(fake, member, QUESTION, channel_id=CHANNEL_ID), plain(fake, member, QUESTION, channel_id=other_thread),
         no_text],
        barrier=mention(fake, member, STANDALONE, channel_id=other_thread),
    )

    assert welcome == THREAD_WELCOME_EVERY_MESSAGE
    [answered] = [m for _, m in fake.created if m["channel_id"] == str(other_thread)]
    assert answered["embeds"][0]["title"] == STANDALONE
    assert FOLLOW_UP_PREFIX not in str(answered["embeds"][0].get("description"))


async def test_without_the_message_content_intent_settings_says_the_setting_is_not_in_effect(
    db_harness: Harness, member: FakeUser, admin: FakeUser
) -> None:
    cog = db_harness.bot.get_cog("Ask")
    assert cog is not None and db_harness.bot.intents.message_content is False

    shown = await set_every_thread_message(db_harness, admin, True)

    assert shown == EVERY_MESSAGE_WITHOUT_INTENT
    assert db_harness.bot.db is not None and db_harness.bot.db.guild_settings.get(GUILD_ID).answer_every_thread_message
    assert cog.follows_every_message(db_harness.bot.get_guild(GUILD_ID)) is False  # type: ignore[attr-defined]
