"""Helpers for the Discord end-to-end tests: settings, a running bot, and what it sent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord.gateway
import discord.http
import pytest
import yarl
from fake_discord import APP_ID, GUILD_ID, MOD_ROLE_ID, FakeDiscord, FakeUser, Recorded

from bot.discord_bot.client import SpaceBotBase, create_bot
from bot.discord_bot.config import DiscordSettings

QUESTION = "When is Russia leaving the ISS?"


class ErrorLog(logging.Handler):
    """Collects ERROR records; a test takes the ones it expects, any left over fail it."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self, pattern: str) -> list[logging.LogRecord]:
        regex = re.compile(pattern)
        taken = [r for r in self.records if regex.search(r.getMessage())]
        self.records = [r for r in self.records if r not in taken]
        return taken


def make_settings(root: Path, **overrides: Any) -> DiscordSettings:
    values: dict[str, Any] = {
        "knowledge_dir": root / "knowledge",
        "index_dir": root / "index",
        "encoder": "torch",
        "cooldown_rate": 50,
        "cooldown_per": 60.0,
        "watch_interval": 3600.0,
        "dev_guild_id": GUILD_ID,
        "mod_role_ids": [MOD_ROLE_ID],
        "discord_token": "fake-token",
        "batch_wait_ms": 1.0,
    }
    values.update(overrides)
    return DiscordSettings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def serving(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """Start ``fake`` and point discord.py's REST and gateway addresses at it; afterwards, check the bot
    called no route the fake does not know."""
    await fake.start()
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    try:
        yield fake
    finally:
        await fake.stop()
    assert not fake.unknown_routes, f"the bot called routes the fake Discord does not know: {fake.unknown_routes}"


# A knowledge file that fails validation (no source, a date that is not a date).
BROKEN_TOPIC = """\
topic: broken-topic
title: A topic with mistakes
passages:
  - id: broken-topic-no-source
    title: A passage without a source
    text: This passage has no source and a bad date.
    date: sometime in 2024
"""


def reword_one_passage(knowledge: Path) -> str:
    """Change the title of the first passage of space-debris.yaml (no validation limit can trip
    on that); return the passage's id."""
    path = knowledge / "space-debris.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    first_id = next(i for i, line in enumerate(lines) if line.startswith("  - id: "))
    title = next(i for i in range(first_id, len(lines)) if lines[i].startswith("    title: "))
    lines[title] = lines[title].replace("    title: ", "    title: Reworded - ", 1)
    path.write_text("".join(lines), encoding="utf-8")
    return lines[first_id].removeprefix("  - id: ").strip()


# -- a running bot ------------------------------------------------------------------------------
@dataclass
class Exchange:
    """What the bot sent for one interaction."""

    callback: Recorded
    followups: list[Recorded] = field(default_factory=list)

    @property
    def callback_type(self) -> int:
        return int(self.callback.body["type"])

    @property
    def callback_data(self) -> dict[str, Any]:
        return self.callback.body.get("data") or {}

    @property
    def followup(self) -> dict[str, Any]:
        assert self.followups, "the bot sent no follow-up"
        return self.followups[-1].body

    @property
    def embed(self) -> dict[str, Any]:
        embeds = self.followup.get("embeds") or []
        assert len(embeds) == 1, f"expected one embed, got {self.followup}"
        return embeds[0]


@dataclass
class Harness:
    fake: FakeDiscord
    bot: SpaceBotBase

    async def interact(self, payload: dict[str, Any], *, followups: int = 1, seconds: float = 10.0) -> Exchange:
        interaction_id, token = payload["id"], payload["token"]
        await self.fake.dispatch("INTERACTION_CREATE", payload)
        callback = await self.fake.wait_for(
            lambda r: r.path == f"interactions/{interaction_id}/{token}/callback", seconds=seconds
        )
        sent: list[Recorded] = []
        if followups:
            sent = await self.fake.wait_for(
                lambda r: r.method == "POST" and r.path == f"webhooks/{APP_ID}/{token}",
                count=followups,
                seconds=seconds,
            )
        return Exchange(callback[0], sent)

    async def slash(
        self,
        user: FakeUser,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        followups: int = 1,
    ) -> Exchange:
        payload = self.fake.slash_payload(user, name, _options(options), subcommand=subcommand)
        return await self.interact(payload, followups=followups)

    async def autocomplete(self, user: FakeUser, name: str, option: str, current: str) -> list[dict[str, Any]]:
        opts = [{"type": 3, "name": option, "value": current, "focused": True}]
        payload = self.fake.slash_payload(user, name, opts, autocomplete=True)
        exchange = await self.interact(payload, followups=0)
        assert exchange.callback_type == 8
        return list(exchange.callback_data["choices"])

    async def say(self, message: dict[str, Any], *, replies: int = 1, seconds: float = 10.0) -> list[Recorded]:
        """Send a MESSAGE_CREATE and wait for the bot's replies to it (by message reference)."""
        await self.fake.dispatch("MESSAGE_CREATE", message)
        if not replies:
            return []
        return await self.fake.wait_for(lambda r: replies_to(r, message["id"]), count=replies, seconds=seconds)


def replies_to(request: Recorded, message_id: str) -> bool:
    if request.method != "POST" or not request.path.startswith("channels/") or not isinstance(request.body, dict):
        return False
    reference = request.body.get("message_reference") or {}
    return str(reference.get("message_id")) == message_id


def _options(options: dict[str, Any] | None) -> list[dict[str, Any]]:
    result = []
    for name, value in (options or {}).items():
        kind = 5 if isinstance(value, bool) else 3
        result.append({"type": kind, "name": name, "value": value})
    return result


async def start_bot(fake: FakeDiscord, bot: SpaceBotBase) -> asyncio.Task[None]:
    await bot.login("fake-token")
    task = asyncio.create_task(bot.connect(reconnect=True), name="test-bot-connect")
    await asyncio.wait_for(bot.wait_until_ready(), 10)
    return task


async def stop_bot(bot: SpaceBotBase, task: asyncio.Task[None]) -> None:
    await bot.close()
    await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, settings: DiscordSettings, **kwargs: Any) -> AsyncIterator[Harness]:
    """A real bot connected to ``fake`` (pass ``engine=`` or ``engine_loader=``), closed on exit."""
    bot = create_bot(settings, guild_ready_timeout=0.05, **kwargs)
    task = await start_bot(fake, bot)
    try:
        yield Harness(fake, bot)
    finally:
        await stop_bot(bot, task)
