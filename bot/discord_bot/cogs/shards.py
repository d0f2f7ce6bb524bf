"""Sharded deployments: follow reloads made by other processes over the shared ``index/``,
and log shard connection events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.errors import EngineUnavailable

if TYPE_CHECKING:
    from bot.core.engine import Engine

log = logging.getLogger(__name__)


class Shards(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot
        self._watcher: asyncio.Task[None] | None = None
        self.refreshes = 0

    async def cog_load(self) -> None:
        self._watcher = asyncio.create_task(self._watch(), name="spacebot-index-watcher")

    async def cog_unload(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        try:
            engine = await self.bot.get_engine()
        except EngineUnavailable:
            return  # already logged when the load failed
        interval = self.bot.settings.watch_interval
        while True:
            await asyncio.sleep(interval)
            await self.refresh_once(engine)

    async def refresh_once(self, engine: Engine) -> bool:
        """Load the shared index if another process rebuilt it; a failure is logged, not fatal."""
        try:
            changed = await engine.refresh_if_changed()
        except Exception:
            log.exception("could not pick up the shared index; will retry in %.0f s", self.bot.settings.watch_interval)
            return False
        if changed:
            self.refreshes += 1
            log.info("picked up a knowledge base rebuilt by another process")
        return bool(changed)

    @commands.Cog.listener()
    async def on_shard_ready(self, shard_id: int) -> None:
        log.info("shard %s ready", shard_id)

    @commands.Cog.listener()
    async def on_shard_resumed(self, shard_id: int) -> None:
        log.info("shard %s resumed", shard_id)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Shards(bot))
