"""Follow the shared ``index/``: load a knowledge base that another process rebuilt.

Another shard process's ``/kb reload``, or a ``spacebot build`` run beside the bot, writes a new
snapshot; every ``watch_interval`` seconds this loop asks the engine to pick it up.
"""

from __future__ import annotations

import asyncio
import logging

from discord.ext import commands, tasks

from bot.discord_bot.client import SpaceBotBase

log = logging.getLogger(__name__)


class IndexWatcher(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot
        self.check_index.change_interval(seconds=bot.settings.watch_interval)

    async def cog_load(self) -> None:
        self.check_index.start()

    async def cog_unload(self) -> None:
        self.check_index.cancel()

    @tasks.loop(seconds=10)
    async def check_index(self) -> None:
        """One check; a failure is logged and retried at the next tick, never fatal."""
        engine = self.bot.engine
        if engine is None:  # the engine failed to load: the bot is closing
            self.check_index.stop()
            return
        try:
            changed = await engine.refresh_if_changed()
        except Exception:
            log.exception("could not pick up the shared index; will retry in %.0f s", self.bot.settings.watch_interval)
            return
        if changed:
            log.info("picked up a knowledge base rebuilt by another process")

    @check_index.before_loop
    async def wait_for_the_engine(self) -> None:
        """The engine has just loaded the current snapshot: the first check is one interval later."""
        await self.bot.engine_ready.wait()
        await asyncio.sleep(self.bot.settings.watch_interval)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(IndexWatcher(bot))
