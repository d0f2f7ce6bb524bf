"""Start-up, intents, gateway resume, sharding over a shared index, shutdown and the CLI runners."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import discord.http
import pytest
from discord_harness import QUESTION, ErrorLog, Harness, make_settings, reword_one_passage, running_bot
from fake_discord import APP_ID, GUILD_ID, FakeDiscord, FakeUser

from bot.core.config import Settings
from bot.core.embedding import Encoder
from bot.core.engine import Engine
from bot.discord_bot import runner
from bot.discord_bot.client import DEFAULT_COGS, ShardedSpaceBot

REPO = Path(__file__).resolve().parents[2]
GUILDS, GUILD_MESSAGES, DM_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 9, 1 << 12, 1 << 15


async def test_identify_asks_only_for_guilds_guild_messages_and_dm_messages(harness: Harness) -> None:
    assert harness.fake.gateway.intents == GUILDS | GUILD_MESSAGES | DM_MESSAGES
    assert not harness.fake.gateway.intents & MESSAGE_CONTENT


async def test_gateway_drop_is_resumed_and_the_bot_keeps_answering(harness: Harness, member: FakeUser) -> None:
    await harness.fake.drop_connection(code=4000)
    await asyncio.wait_for(harness.fake.gateway.connected.wait(), 10)

    exchange = await harness.slash(member, "ask", {"question": QUESTION})

    assert harness.fake.gateway.resume_count == 1
    assert harness.fake.gateway.identify_count == 1  # resumed, not a new session
    assert exchange.embed["title"] == QUESTION


async def test_failing_cog_is_logged_and_the_other_cogs_still_serve(
    fake_discord: FakeDiscord, settings: Settings, engine: Engine, member: FakeUser, error_log: ErrorLog
) -> None:
    cogs = ("bot.discord_bot.cogs.no_such_cog", *DEFAULT_COGS)
    async with running_bot(fake_discord, settings, engine=engine, cogs=cogs) as harness:
        exchange = await harness.slash(member, "ask", {"question": QUESTION})
        assert harness.bot.failed_cogs == ["bot.discord_bot.cogs.no_such_cog"]

    [record] = error_log.take("no_such_cog failed to load")
    assert record.exc_info is not None
    assert exchange.embed["title"] == QUESTION


async def test_sharded_process_runs_its_shard_and_follows_a_reload_made_by_another_process(
    fake_discord: FakeDiscord, kb_dir: Path, encoder: Encoder, member: FakeUser
) -> None:
    settings = make_settings(kb_dir, shard_count=2, shard_ids=[1], watch_interval=0.05)
    engine = await asyncio.to_thread(Engine.open, settings, encoder)
    other_process = await asyncio.to_thread(Engine.open, settings, encoder)
    async with running_bot(fake_discord, settings, engine=engine) as harness:
        assert isinstance(harness.bot, ShardedSpaceBot)
        assert fake_discord.gateway.shards == [[1, 2]]
        reword_one_passage(kb_dir / "knowledge")
        report = await other_process.reload(actor="shard 0 process")
        assert report.ok
        for _ in range(100):
            if engine.status().kb_version == report.kb_version:
                break
            await asyncio.sleep(0.05)
        exchange = await harness.slash(member, "ask", {"question": QUESTION})
    other_process.close()

    assert engine.status().kb_version == report.kb_version
    assert report.kb_version in exchange.embed["footer"]["text"]


async def test_sigterm_closes_the_gateway_and_the_engine(
    fake_discord: FakeDiscord, settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[bool] = []
    original_close = engine.close

    def recording_close() -> None:
        closed.append(True)
        original_close()

    monkeypatch.setattr(engine, "close", recording_close)
    # A safety net: if the runner failed to install its handler, SIGTERM must not kill pytest.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        options = {"engine": engine, "guild_ready_timeout": 0.05}
        running = asyncio.create_task(runner._run(settings, "fake-token", options))
        await asyncio.wait_for(fake_discord.gateway.connected.wait(), 10)

        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(running, 10)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert closed == [True]
    assert fake_discord.gateway.ws is not None and fake_discord.gateway.ws.closed


def test_run_without_a_token_prints_one_line_and_returns_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, discord_token=None)

    code = runner.run_bot(settings)

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and "DISCORD_TOKEN" in captured.err
    assert "Traceback" not in captured.err + captured.out


async def test_run_with_a_rejected_token_prints_one_line_without_the_token_and_returns_2(
    fake_discord: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "MTIz.rejected-secret-token"
    settings = make_settings(tmp_path, discord_token=secret)
    caplog.set_level(logging.DEBUG)

    code = await asyncio.to_thread(runner.run_bot, settings)

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and "rejected" in captured.err
    assert "Traceback" not in captured.err
    assert secret not in captured.err + captured.out + caplog.text
    assert fake_discord.sent("GET", "users/@me")[0].headers["Authorization"] == f"Bot {secret}"
    assert fake_discord.gateway.identify_count == 0


async def test_sync_publishes_commands_globally_or_to_one_guild_without_connecting(
    fake_discord: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, dev_guild_id=None)

    assert await asyncio.to_thread(runner.sync_commands, settings, None) == 0
    assert await asyncio.to_thread(runner.sync_commands, settings, GUILD_ID) == 0

    [global_put] = fake_discord.sent("PUT", f"applications/{APP_ID}/commands")
    [guild_put] = fake_discord.sent("PUT", f"applications/{APP_ID}/guilds/{GUILD_ID}/commands")
    names = {c["name"] for c in global_put.body}
    assert {"ask", "source", "topics", "kb", "Ask the bot about this"} <= names
    assert {c["name"] for c in guild_put.body} == names
    assert fake_discord.gateway.identify_count == 0
    out = capsys.readouterr().out
    assert f"synced {len(names)} commands globally" in out
    assert f"synced {len(names)} commands to guild {GUILD_ID}" in out


async def test_engine_that_fails_to_load_is_logged_and_questions_get_a_private_error(
    fake_discord: FakeDiscord, settings: Settings, member: FakeUser, error_log: ErrorLog
) -> None:
    def failing_loader(s: Settings) -> Engine:
        raise OSError("index folder is unreadable")

    async with running_bot(fake_discord, settings, engine_loader=failing_loader) as harness:
        await asyncio.wait_for(harness.bot.engine_ready.wait(), 10)
        exchange = await harness.slash(member, "ask", {"question": QUESTION})

    assert int(exchange.followup["flags"]) & 64
    assert "not available" in exchange.followup["content"]
    [load_failure] = error_log.take("failed to load")
    assert load_failure.exc_info is not None and "unreadable" in str(load_failure.exc_info[1])
    assert error_log.take("the answer engine is not available")


async def test_run_when_discord_is_unreachable_prints_one_line_and_returns_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")

    code = await asyncio.to_thread(runner.run_bot, make_settings(tmp_path))

    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith("error: cannot reach Discord") and captured.err.count("\n") == 1


def test_spacebot_run_without_a_token_exits_2_with_one_stderr_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN" and not k.startswith("SPACEBOT_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=tmp_path,  # no .env here
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [runner.MISSING_TOKEN]
