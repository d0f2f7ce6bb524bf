"""Several processes: say which shards and knowledge base this one serves, and follow the published one.

Every ``HEARTBEAT_SECONDS`` this process writes its heartbeat (shards, ``kb_version``) and, with
PostgreSQL, checks that it serves the published knowledge base: notifications bring a new one
within a second, and this check catches one missed while the database was unreachable. The logic
is :class:`~bot.storage.knowledge_sync.KnowledgeSync`'s; this cog only runs it.
"""

from __future__ import annotations

import logging

from discord.ext import commands, tasks

from bot.discord_bot.client import SpaceBotBase
from bot.storage import StorageError
from bot.storage.errors import describe

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0


def serving_shards(bot: SpaceBotBase) -> list[int]:
    """The shard ids this process runs ([] for an unsharded bot)."""
    shard_ids = getattr(bot, "shard_ids", None)  # AutoShardedBot: the ones given, or None for all
    if shard_ids:
        return sorted(shard_ids)
    if isinstance(bot, commands.AutoShardedBot) and bot.shard_count:
        return list(range(bot.shard_count))
    return []


class Cluster(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        if self.bot.db is not None:
            self.heartbeat.start()

    async def cog_unload(self) -> None:
        self.heartbeat.cancel()

    @tasks.loop(seconds=HEARTBEAT_SECONDS)
    async def heartbeat(self) -> None:
        """Catch up on the published knowledge base, then report; failures are retried at the next tick."""
        db = self.bot.db
        if db is None or self.bot.engine is None:
            return
        try:
            await db.sync.catch_up()
            await db.sync.beat(serving_shards(self.bot))
        except StorageError as exc:
            # A database that never opened was reported once at start: do not repeat it every tick.
            log.log(logging.WARNING if db.available else logging.DEBUG,
                    "heartbeat not written (next try in %.0f s): %s", HEARTBEAT_SECONDS, describe(exc))
        except Exception:
            log.exception("heartbeat failed; next try in %.0f s", HEARTBEAT_SECONDS)

    @heartbeat.before_loop
    async def start_following(self) -> None:
        """Once the engine is loaded and the database opened (or failed to), start listening for publications."""
        await self.bot.engine_ready.wait()
        db = self.bot.db
        if db is not None and self.bot.engine is not None:
            await db.wait_opened()
            db.sync.start()


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Cluster(bot))
