"""Start-up, intents, gateway resume, sharding over a shared index, shutdown and the CLI runners."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import discord.http
import pytest
from discord_harness import BROKEN_TOPIC, QUESTION, ErrorLog, Harness, make_settings, reword_one_passage, running_bot
from fake_discord import APP_ID, GUILD_ID, FakeDiscord, FakeUser

from bot.core.embedding import Encoder
from bot.core.engine import Engine
from bot.core.errors import EncoderUnavailableError
from bot.discord_bot import runner
from bot.discord_bot.client import DEFAULT_COGS, ShardedSpaceBot, create_bot, quiet_voice_warnings
from bot.discord_bot.config import DiscordSettings

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
    fake_discord: FakeDiscord, settings: DiscordSettings, engine: Engine, member: FakeUser, error_log: ErrorLog
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
    fake_discord: FakeDiscord, settings: DiscordSettings, engine: Engine, monkeypatch: pytest.MonkeyPatch
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


def _broken_knowledge_without_an_index(root: Path) -> DiscordSettings:
    (root / "knowledge").mkdir()
    (root / "knowledge" / "broken-topic.yaml").write_text(BROKEN_TOPIC, encoding="utf-8")
    return make_settings(root)  # root / "index" does not exist: nothing saved to fall back on


async def test_bot_whose_engine_fails_to_load_closes_itself_and_keeps_the_reason(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    def failing_loader(s: DiscordSettings) -> Engine:
        raise OSError("index folder is unreadable")

    bot = create_bot(settings, engine_loader=failing_loader, guild_ready_timeout=0.05)
    try:
        await bot.login("fake-token")
        await asyncio.wait_for(bot.connect(reconnect=True), 10)  # returns only once the bot is closed
    finally:
        await bot.close()

    assert bot.is_closed()
    assert isinstance(bot.engine_error, OSError) and "unreadable" in str(bot.engine_error)
    assert fake_discord.gateway.ws is None or fake_discord.gateway.ws.closed
    # no ERROR record either (the error_log fixture checks): the runner reports it, in one line


async def test_a_bot_closed_while_discord_py_waits_for_its_guilds_never_dispatches_ready_afterwards(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """discord.py's READY handler waits ``guild_ready_timeout`` for more guilds, then dispatches "ready"
    on ``self.loop``, which ``close()`` has set to MISSING by then: an AttributeError in a task nobody
    awaits (seen in a CI run as "Task exception was never retrieved"). The bot cancels that wait when
    it closes; the fixtures fail the test on the error or the unhandled task exception."""
    def slowly_failing_loader(s: DiscordSettings) -> Engine:
        time.sleep(0.3)  # in the loader's thread: READY and the guild arrive meanwhile
        raise OSError("index folder is unreadable")

    bot = create_bot(make_settings(tmp_path), engine_loader=slowly_failing_loader, guild_ready_timeout=0.6)
    try:
        await bot.login("fake-token")
        await asyncio.wait_for(bot.connect(reconnect=True), 10)  # the engine fails at once: the bot closes
    finally:
        await bot.close()
    await asyncio.sleep(0.8)  # past the guild wait: an uncancelled READY handler dispatches now
    gc.collect()

    assert bot.is_closed()


async def test_run_whose_engine_fails_to_load_returns_1_with_one_stderr_line(
    fake_discord: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path)
    def failing_loader(s: DiscordSettings) -> Engine:
        raise EncoderUnavailableError("the model 'missing-model' is not available locally")

    code = await asyncio.to_thread(runner.run_bot, settings, engine_loader=failing_loader, guild_ready_timeout=0.05)

    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.splitlines() == [f"{runner.ENGINE_FAILED}the model 'missing-model' is not available locally"]
    assert "Traceback" not in captured.err + captured.out


async def test_run_with_invalid_knowledge_and_no_saved_index_returns_1_naming_the_first_error(
    fake_discord: FakeDiscord, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _broken_knowledge_without_an_index(tmp_path)

    code = await asyncio.to_thread(runner.run_bot, settings, guild_ready_timeout=0.05)

    [line] = capsys.readouterr().err.splitlines()
    assert code == 1
    assert line.startswith(runner.ENGINE_FAILED) and "error(s) in the knowledge files" in line
    assert "broken-topic.yaml" in line and "spacebot validate" in line
    assert fake_discord.gateway.ws is None or fake_discord.gateway.ws.closed


SPACEBOT_RUN_ON_THE_FAKE = """\
import sys

import discord.gateway
import discord.http
import yarl

discord.http.Route.BASE = sys.argv[1]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2])
from bot.cli import main

raise SystemExit(main(["run"]))
"""


async def test_spacebot_run_with_broken_knowledge_exits_1_with_one_error_line_and_no_voice_warnings(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    _broken_knowledge_without_an_index(tmp_path)
    missing = [name for name in ("nacl", "davey") if importlib.util.find_spec(name) is None]
    assert missing, "discord.py warns at start about each missing voice library: this test needs one missing"
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN" and not k.startswith("SPACEBOT_")}
    env |= {"PYTHONPATH": str(REPO), "DISCORD_TOKEN": "fake-token", "SPACEBOT_LOG_LEVEL": "INFO"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SPACEBOT_RUN_ON_THE_FAKE, fake_discord.api_base, fake_discord.gateway_url,
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 120)

    lines = stderr.decode().splitlines()
    assert process.returncode == 1, lines
    assert lines[-1].startswith(runner.ENGINE_FAILED) and "broken-topic.yaml" in lines[-1]
    assert [line for line in lines if "failed to load" in line] == [lines[-1]]
    assert not [line for line in lines if "Traceback" in line]
    assert any("logging in using static token" in line for line in lines), "INFO records reach stderr"
    assert not [line for line in lines if "voice will NOT be supported" in line]


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_voice_warnings_show_only_at_debug_and_other_discord_warnings_pass(level: int) -> None:
    quiet_voice_warnings()
    quiet_voice_warnings()  # installing twice adds nothing
    logger = logging.getLogger("discord.client")

    def record(message: str) -> logging.LogRecord:
        return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, (), None)

    voice = [record("PyNaCl is not installed, voice will NOT be supported"),
             record("davey is not installed, voice will NOT be supported")]
    other = record("Shard ID None heartbeat blocked for more than 10 seconds.")
    previous = logger.level
    logger.setLevel(level)
    try:
        passed = [bool(logger.filter(r)) for r in [*voice, other]]
    finally:
        logger.setLevel(previous)

    assert passed == [level == logging.DEBUG, level == logging.DEBUG, True]
    assert [r.levelname for r in voice] == ["DEBUG", "DEBUG"]
    assert other.levelno == logging.WARNING
    assert len(logger.filters) == len({type(f) for f in logger.filters})


async def test_index_watcher_logs_a_failed_check_and_keeps_checking(
    fake_discord: FakeDiscord, kb_dir: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch, error_log: ErrorLog
) -> None:
    checks: list[float] = []

    async def flaky_refresh() -> bool:
        checks.append(time.monotonic())
        if len(checks) == 1:
            raise OSError("the shared volume went away")
        return False

    monkeypatch.setattr(engine, "refresh_if_changed", flaky_refresh)
    async with running_bot(fake_discord, make_settings(kb_dir, watch_interval=0.02), engine=engine) as harness:
        assert harness.bot.get_cog("IndexWatcher") is not None
        for _ in range(250):
            if len(checks) >= 3:
                break
            await asyncio.sleep(0.02)

    assert len(checks) >= 3
    [record] = error_log.take("could not pick up the shared index")
    assert record.exc_info is not None and "went away" in str(record.exc_info[1])


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
