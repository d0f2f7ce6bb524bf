"""/ask end to end: the real discord.py client and the real engine against the fake Discord."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from discord_harness import ErrorLog, Harness, running_bot
from fake_discord import APP_ID, FakeDiscord, FakeUser

from bot.core.embedding import Encoder
from bot.core.engine import Engine
from bot.core.models import Answer, ReloadReport, Suggestion
from bot.discord_bot.client import AUTOCOMPLETE_INPUT_LIMIT
from bot.discord_bot.config import DiscordSettings
from bot.discord_bot.embeds import decline_title

QUESTION = "When is Russia leaving the ISS?"


async def test_ask_defers_then_answers_with_sources_history_and_kb_version(harness: Harness, member: FakeUser) -> None:
    engine = harness.bot.engine
    assert engine is not None
    expected = engine.answer(QUESTION)
    assert expected.answered and expected.history, "the fixture KB should answer this with history"

    exchange = await harness.slash(member, "ask", {"question": QUESTION})

    assert exchange.callback_type == 5  # deferred ("thinking…") before the answer
    assert not int(exchange.callback_data.get("flags", 0)) & 64  # public by default
    embed = exchange.embed
    assert embed["title"] == QUESTION
    assert embed["description"].startswith(expected.lead[:100])
    assert "[1]" in embed["description"]
    names = [f["name"] for f in embed["fields"]]
    lead = expected.passages[0].passage
    assert names[0] == f"[1] {lead.source.publisher}: {lead.source.title} ({lead.date.isoformat()})"
    assert lead.source.url in embed["fields"][0]["value"]
    assert names[-1] == "Earlier positions"
    assert expected.history[0].date.isoformat() in embed["fields"][-1]["value"]
    assert expected.kb_version in embed["footer"]["text"]


async def test_ask_off_topic_question_is_declined_with_its_reason_explanation_and_topics_hint(
    harness: Harness, member: FakeUser
) -> None:
    question = "What is the best pizza recipe?"
    engine = harness.bot.engine
    assert engine is not None
    expected = engine.answer(question)
    assert not expected.answered

    embed = (await harness.slash(member, "ask", {"question": question})).embed

    assert embed["title"] == decline_title(expected)
    assert (expected.message or engine.scope)[:80] in embed["description"]
    for suggestion in expected.suggestions[:3]:
        assert suggestion[:50] in embed["description"]
    assert "/topics" in embed["description"]
    assert "fields" not in embed or not embed["fields"]


async def test_ask_private_option_makes_the_deferral_and_answer_ephemeral(harness: Harness, member: FakeUser) -> None:
    exchange = await harness.slash(member, "ask", {"question": QUESTION, "private": True})

    assert exchange.callback_type == 5
    assert int(exchange.callback_data["flags"]) & 64
    assert int(exchange.followup["flags"]) & 64
    assert exchange.embed["title"] == QUESTION


async def test_ask_autocomplete_offers_engine_suggestions_within_discord_limits(
    harness: Harness, member: FakeUser
) -> None:
    engine = harness.bot.engine
    assert engine is not None
    choices = await harness.autocomplete(member, "ask", "question", "russia iss")

    assert choices, "autocomplete offered nothing"
    assert len(choices) <= 25
    labels = [s.label[:99] for s in engine.suggest("russia iss")]
    assert choices[0]["name"][:99] == labels[0]
    assert all(1 <= len(c["name"]) <= 100 and len(c["value"]) <= 100 for c in choices)


async def test_autocomplete_matches_on_the_event_loop_thread_with_the_input_capped(
    harness: Harness, member: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = harness.bot.engine
    assert engine is not None
    calls: list[tuple[int, int]] = []
    original = engine.suggest

    def recording_suggest(text: str, limit: int = 25) -> list[Suggestion]:
        calls.append((threading.get_ident(), len(text)))
        return original(text, limit)

    monkeypatch.setattr(engine, "suggest", recording_suggest)
    await harness.autocomplete(member, "ask", "question", "russia iss")
    await harness.autocomplete(member, "source", "passage", "russia " * 1000)

    loop_thread = threading.get_ident()  # the bot runs on this test's event loop
    assert [thread for thread, _ in calls] == [loop_thread, loop_thread]  # neither pool: never queued
    assert [length for _, length in calls] == [len("russia iss"), AUTOCOMPLETE_INPUT_LIMIT]


async def test_autocomplete_answers_within_a_second_while_a_slow_reload_and_a_busy_pool_wait(
    harness: Harness, member: FakeUser, admin: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = harness.bot.engine
    assert engine is not None
    release = threading.Event()
    original_reload = engine.reload_sync

    def slow_reload(actor: str | None = None) -> ReloadReport:
        assert release.wait(10), "the test never released the reload"
        return original_reload(actor)

    monkeypatch.setattr(engine, "reload_sync", slow_reload)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-busy-default"))
    busy_default_pool = loop.run_in_executor(None, release.wait, 10)
    reload_payload = harness.fake.slash_payload(admin, "kb", subcommand="reload")
    reloading = asyncio.create_task(harness.interact(reload_payload, seconds=20))
    try:
        await harness.fake.wait_for(lambda r: r.path.endswith(f"{reload_payload['token']}/callback"))
        started = time.perf_counter()
        choices = await asyncio.wait_for(harness.autocomplete(member, "ask", "question", "russia iss"), 3.0)
        elapsed = time.perf_counter() - started
    finally:
        release.set()
    await busy_default_pool
    reloaded = await reloading

    assert choices and elapsed < 1.0
    assert reloaded.embed["title"].startswith("Knowledge base reloaded")  # the reload itself completes


async def test_ask_question_over_max_length_gets_a_clear_private_message(harness: Harness, member: FakeUser) -> None:
    limit = harness.bot.settings.max_question_length
    exchange = await harness.slash(member, "ask", {"question": "why " * limit}, followups=0)

    assert exchange.callback_type == 4
    assert int(exchange.callback_data["flags"]) & 64
    assert f"under {limit} characters" in exchange.callback_data["content"]


async def test_ask_cooldown_gives_a_friendly_private_notice_after_the_rate(
    fake_discord: FakeDiscord, cooldown_settings: DiscordSettings, engine: Engine, member: FakeUser, admin: FakeUser
) -> None:
    async with running_bot(fake_discord, cooldown_settings, engine=engine) as harness:
        for _ in range(cooldown_settings.cooldown_rate):
            assert (await harness.slash(member, "ask", {"question": QUESTION})).callback_type == 5
        limited = await harness.slash(member, "ask", {"question": QUESTION}, followups=0)
        other_user = await harness.slash(admin, "ask", {"question": QUESTION})

    assert limited.callback_type == 4
    assert int(limited.callback_data["flags"]) & 64
    assert "Try again in" in limited.callback_data["content"]
    assert other_user.callback_type == 5  # the cooldown is per user


async def test_ask_with_everyone_in_the_question_pings_nobody(harness: Harness, member: FakeUser) -> None:
    question = "@everyone when is Russia leaving the ISS? <@&900000000000000050>"
    exchange = await harness.slash(member, "ask", {"question": question})

    assert exchange.followup["allowed_mentions"] == {"parse": []}
    assert exchange.embed["title"] == question


async def test_ask_engine_exception_shows_reference_code_and_logs_traceback_with_it(
    harness: Harness, member: FakeUser, monkeypatch: pytest.MonkeyPatch, error_log: ErrorLog
) -> None:
    engine = harness.bot.engine
    assert engine is not None

    async def broken_answer(question: str, k: int | None = None, context: object = ()) -> Answer:
        raise RuntimeError("index on fire")

    monkeypatch.setattr(engine, "answer_async", broken_answer)
    exchange = await harness.slash(member, "ask", {"question": QUESTION})

    message = exchange.followup
    assert int(message["flags"]) & 64, "the failure notice must be private"
    match = re.search(r"reference `(E[0-9A-F]{8})`", message["content"])
    assert match, message["content"]
    assert "index on fire" not in message["content"]
    # the public "thinking…" message is removed so the notice can be private
    assert harness.fake.sent("DELETE", f"webhooks/{APP_ID}/*/messages/@original")
    records = error_log.take(match.group(1))
    assert len(records) == 1
    assert records[0].exc_info is not None and "index on fire" in str(records[0].exc_info[1])


async def test_ask_before_the_engine_is_ready_is_deferred_then_answered(
    fake_discord: FakeDiscord, settings: DiscordSettings, encoder: Encoder, member: FakeUser
) -> None:
    release = threading.Event()

    def slow_loader(s: DiscordSettings) -> Engine:
        assert release.wait(10), "test never released the engine"
        return Engine.open(s, encoder=encoder)

    try:
        async with running_bot(fake_discord, settings, engine_loader=slow_loader) as harness:
            assert harness.bot.engine is None
            payload = fake_discord.slash_payload(member, "ask", [{"type": 3, "name": "question", "value": QUESTION}])
            waiting = asyncio.create_task(harness.interact(payload))
            await fake_discord.wait_for(lambda r: r.path.endswith(f"{payload['token']}/callback"))
            assert not fake_discord.sent("POST", f"webhooks/{APP_ID}/{payload['token']}")
            release.set()
            exchange = await waiting
    finally:
        release.set()

    assert exchange.callback_type == 5
    assert exchange.embed["title"] == QUESTION


async def test_a_stale_command_discord_still_shows_gets_a_private_resync_notice(
    harness: Harness, member: FakeUser
) -> None:
    exchange = await harness.slash(member, "retired-command", followups=0)

    assert exchange.callback_type == 4
    assert int(exchange.callback_data["flags"]) & 64
    assert "re-sync" in exchange.callback_data["content"]
