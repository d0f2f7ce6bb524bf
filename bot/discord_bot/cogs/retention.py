"""Retention: question texts older than SPACEBOT_RETENTION_DAYS are deleted every few hours; counts stay."""

from __future__ import annotations

import logging

from discord.ext import commands, tasks

from bot.discord_bot.client import SpaceBotBase
from bot.storage import StorageError
from bot.storage.errors import describe

log = logging.getLogger(__name__)

PURGE_EVERY_HOURS = 6


class Retention(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        if self.bot.db is not None:
            self.purge.start()

    async def cog_unload(self) -> None:
        self.purge.cancel()

    @tasks.loop(hours=PURGE_EVERY_HOURS)
    async def purge(self) -> None:
        db = self.bot.db
        if db is None:
            return
        await db.wait_opened()
        try:
            report = await db.purge_old_texts()
        except StorageError as exc:
            # A database that never opened was reported once at start: do not repeat it every 6 hours.
            log.log(logging.WARNING if db.available else logging.DEBUG,
                    "retention: could not delete old question texts (next try in %d h): %s",
                    PURGE_EVERY_HOURS, describe(exc))
            return
        if report.gaps_purged or report.reports_anonymised:
            log.info("retention: %d gap texts and %d reports' texts deleted",
                     report.gaps_purged, report.reports_anonymised)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Retention(bot))
