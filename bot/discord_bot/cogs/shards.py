"""Shard connection events, logged (the index watcher keeps sharded processes on one version)."""

from __future__ import annotations

import logging

from discord.ext import commands

from bot.discord_bot.client import SpaceBotBase

log = logging.getLogger(__name__)


class Shards(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_shard_ready(self, shard_id: int) -> None:
        log.info("shard %s ready", shard_id)

    @commands.Cog.listener()
    async def on_shard_resumed(self, shard_id: int) -> None:
        log.info("shard %s resumed", shard_id)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Shards(bot))
