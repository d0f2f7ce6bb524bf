"""/kb reload and /kb status: who may use them, what they report, and that answering never stops."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from discord_harness import BROKEN_TOPIC, Harness, reword_one_passage
from fake_discord import APP_ID, BOT_ID, GUILD_ID, FakeUser

from bot.core.engine import Engine

NEW_TOPIC = """\
topic: test-added
title: A topic added by the reload test
passages:
  - id: test-added-2024-05-lunar-cargo
    title: Test agency announces a lunar cargo lander (May 2024)
    text: >-
      In May 2024 a test agency announced a small lunar cargo lander for the south pole of the Moon.
    date: 2024-05-02
    source:
      publisher: Test Wire
      title: Test agency announces lunar cargo lander
      url: https://example.org/lunar-cargo
    tags: [moon]
"""

QUESTION = "When is Russia leaving the ISS?"
DEORBIT_QUESTION = "How will the ISS be deorbited?"  # covered by the fixture's iss-deorbit.yaml


def _engine(harness: Harness) -> Engine:
    engine = harness.bot.engine
    assert engine is not None
    return engine


def _gate_reload(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Hold the engine's reload (on this instance only) until the test releases it."""
    started, release = threading.Event(), threading.Event()
    original = engine.reload_sync

    def gated(actor: str | None = None):  # type: ignore[no-untyped-def]
        started.set()
        assert release.wait(10), "the test never released the reload"
        return original(actor)

    monkeypatch.setattr(engine, "reload_sync", gated)
    return started, release


async def test_kb_reload_is_refused_for_a_plain_member(harness: Harness, member: FakeUser) -> None:
    exchange = await harness.slash(member, "kb", subcommand="reload", followups=0)

    assert exchange.callback_type == 4
    assert int(exchange.callback_data["flags"]) & 64
    assert "Only moderators" in exchange.callback_data["content"]
    assert _engine(harness).last_reload_at is None


async def test_kb_reload_by_manage_server_user_reports_added_and_changed_privately(
    harness: Harness, admin: FakeUser, kb_dir: Path
) -> None:
    (kb_dir / "knowledge" / "test-added.yaml").write_text(NEW_TOPIC, encoding="utf-8")
    changed_id = reword_one_passage(kb_dir / "knowledge")
    old_version = _engine(harness).status().kb_version

    exchange = await harness.slash(admin, "kb", subcommand="reload")

    assert exchange.callback_type == 5 and int(exchange.callback_data["flags"]) & 64
    assert int(exchange.followup["flags"]) & 64
    embed = exchange.embed
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "test-added-2024-05-lunar-cargo" in fields["Added"]
    assert changed_id in fields["Changed"]
    assert fields["Removed"] == "none"
    assert "1 added, 1 changed, 0 removed" in embed["description"]
    new_version = _engine(harness).status().kb_version
    assert new_version != old_version and new_version in embed["title"]
    assert str(admin.id) in embed["footer"]["text"]


async def test_kb_reload_by_a_listed_moderator_role_is_accepted(harness: Harness, curator: FakeUser) -> None:
    exchange = await harness.slash(curator, "kb", subcommand="reload")

    embed = exchange.embed
    assert embed["title"].startswith("Knowledge base reloaded")
    assert "0 added, 0 changed, 0 removed" in embed["description"]
    assert _engine(harness).last_reload_by is not None and str(curator.id) in _engine(harness).last_reload_by


async def test_kb_reload_with_broken_files_lists_errors_and_old_kb_keeps_answering(
    harness: Harness, admin: FakeUser, member: FakeUser, kb_dir: Path
) -> None:
    (kb_dir / "knowledge" / "broken-topic.yaml").write_text(BROKEN_TOPIC, encoding="utf-8")
    old_version = _engine(harness).status().kb_version

    embed = (await harness.slash(admin, "kb", subcommand="reload")).embed

    assert embed["title"] == f"Reload failed: still serving {old_version}"
    assert "broken-topic.yaml" in embed["description"]
    assert "field 'source'" in embed["description"]
    assert "field 'date'" in embed["description"]
    answer = (await harness.slash(member, "ask", {"question": QUESTION})).embed
    assert answer["fields"][0]["name"].startswith("[1] ")
    assert old_version in answer["footer"]["text"]


async def test_questions_during_a_reload_are_all_answered_without_waiting_for_it(
    harness: Harness, admin: FakeUser, member: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = _gate_reload(_engine(harness), monkeypatch)
    reload_payload = harness.fake.slash_payload(admin, "kb", subcommand="reload")
    reloading = asyncio.create_task(harness.interact(reload_payload))
    try:
        assert await asyncio.to_thread(started.wait, 10)
        asks = [harness.slash(member, "ask", {"question": q}) for q in (QUESTION, DEORBIT_QUESTION)]
        mention = harness.say(harness.fake.user_message(member, f"<@{BOT_ID}> space debris rules", mention_bot=True))
        answered = await asyncio.wait_for(asyncio.gather(*asks, mention), 10)
        assert not reloading.done(), "the reload should still be held"
    finally:
        release.set()
    reload_exchange = await reloading

    assert [a.embed["title"] for a in answered[:2]] == [QUESTION, DEORBIT_QUESTION]
    assert answered[2][0].body["embeds"]
    assert reload_exchange.embed["title"].startswith("Knowledge base reloaded")


async def test_second_reload_while_one_runs_is_told_to_wait(
    harness: Harness, admin: FakeUser, curator: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(harness)
    started, release = _gate_reload(engine, monkeypatch)
    first = asyncio.create_task(harness.interact(harness.fake.slash_payload(admin, "kb", subcommand="reload")))
    try:
        assert await asyncio.to_thread(started.wait, 10)
        second = await harness.slash(curator, "kb", subcommand="reload", followups=0)
    finally:
        release.set()
    first_exchange = await first

    assert second.callback_type == 4
    assert int(second.callback_data["flags"]) & 64
    assert "already running" in second.callback_data["content"]
    assert first_exchange.embed["title"].startswith("Knowledge base reloaded")
    assert engine.last_reload_by is not None and str(admin.id) in engine.last_reload_by


async def test_kb_status_shows_version_size_model_and_latency_to_moderators(
    harness: Harness, admin: FakeUser, member: FakeUser
) -> None:
    await harness.slash(member, "ask", {"question": QUESTION})
    status = _engine(harness).status()

    exchange = await harness.slash(admin, "kb", subcommand="status")

    assert int(exchange.followup["flags"]) & 64
    fields = {f["name"]: f["value"] for f in exchange.embed["fields"]}
    assert fields["KB version"] == status.kb_version
    assert fields["Passages"].startswith(f"{status.passage_count} in {status.topic_count} topics")
    assert status.model_name in fields["Model"]
    assert fields["Last reload"] == "not since start"
    assert fields["Median answer latency"].endswith(" ms")
    assert {"Index", "Uptime"} <= fields.keys()


async def test_kb_status_is_refused_for_a_plain_member(harness: Harness, member: FakeUser) -> None:
    exchange = await harness.slash(member, "kb", subcommand="status", followups=0)

    assert exchange.callback_type == 4
    assert "Only moderators" in exchange.callback_data["content"]


async def test_commands_are_synced_to_the_dev_guild_only_and_kb_needs_manage_server(harness: Harness) -> None:
    guild_puts = harness.fake.sent("PUT", f"applications/{APP_ID}/guilds/{GUILD_ID}/commands")
    assert len(guild_puts) == 1
    assert not harness.fake.sent("PUT", f"applications/{APP_ID}/commands")  # never global on start
    commands = {c["name"]: c for c in guild_puts[0].body}
    assert {"ask", "source", "topics", "kb", "Ask the bot about this"} <= commands.keys()
    assert int(commands["kb"]["default_member_permissions"]) == 1 << 5
    assert commands["ask"]["default_member_permissions"] is None
    assert commands["Ask the bot about this"]["type"] == 3
