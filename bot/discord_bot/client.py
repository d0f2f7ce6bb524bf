"""The bot client: minimal intents, no pings, cogs loaded in ``setup_hook``, engine loaded off the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import discord
from discord.ext import commands

from bot.core.config import Settings
from bot.core.engine import Engine
from bot.core.models import Suggestion
from bot.discord_bot.cooldown import UserCooldown
from bot.discord_bot.errors import EngineUnavailable, SpaceTree

log = logging.getLogger(__name__)

EngineLoader = Callable[[Settings], Engine]
R = TypeVar("R")

DEFAULT_COGS: tuple[str, ...] = (
    "bot.discord_bot.cogs.ask",
    "bot.discord_bot.cogs.source",
    "bot.discord_bot.cogs.topics",
    "bot.discord_bot.cogs.kb",
    "bot.discord_bot.cogs.shards",
)


def default_intents() -> discord.Intents:
    """Only what the bot needs; nothing privileged (no message_content, no members)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    return intents


def open_engine(settings: Settings) -> Engine:
    """The default engine loader (blocking: run it in a thread)."""
    return Engine.open(settings)


class SpaceBotBase(commands.Bot):
    """Shared behaviour of :class:`SpaceBot` and :class:`ShardedSpaceBot`.

    Give it either a ready ``engine`` or an ``engine_loader`` (called in a thread from
    ``setup_hook``); commands that arrive before the engine is ready wait for it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        engine_loader: EngineLoader | None = open_engine,
        engine: Engine | None = None,
        cogs: Sequence[str] = DEFAULT_COGS,
        sync_dev_guild: bool = True,
        **options: Any,
    ) -> None:
        options.setdefault("intents", default_intents())
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            tree_cls=SpaceTree,
            **options,
        )
        self.settings = settings
        self.cooldown = UserCooldown(settings.cooldown_rate, settings.cooldown_per)
        self.engine_ready = asyncio.Event()
        self._engine: Engine | None = engine
        self._engine_loader = engine_loader
        self._engine_task: asyncio.Task[None] | None = None
        self._cog_names = tuple(cogs)
        self._sync_dev_guild = sync_dev_guild
        self.failed_cogs: list[str] = []
        if engine is not None:
            self.engine_ready.set()

    # -- start-up ---------------------------------------------------------------------------
    async def setup_hook(self) -> None:
        if self._engine is None and self._engine_loader is not None:
            self._engine_task = asyncio.create_task(self._load_engine(), name="spacebot-engine-load")
        for name in self._cog_names:
            await self._load_cog(name)
        if self._sync_dev_guild and self.settings.dev_guild_id:
            await self._sync_to_dev_guild(self.settings.dev_guild_id)

    async def _load_cog(self, name: str) -> None:
        try:
            await self.load_extension(name)
        except Exception:
            self.failed_cogs.append(name)
            log.exception("cog %s failed to load; the other cogs carry on", name)

    async def _sync_to_dev_guild(self, guild_id: int) -> None:
        guild = discord.Object(id=guild_id)
        self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException:
            log.exception("could not sync commands to the dev guild %s", guild_id)
            return
        log.info("synced %d commands to the dev guild %s", len(synced), guild_id)

    async def _load_engine(self) -> None:
        assert self._engine_loader is not None
        started = time.perf_counter()
        try:
            self._engine = await asyncio.to_thread(self._engine_loader, self.settings)
        except Exception:
            log.exception("the answer engine failed to load; questions will get an error")
        else:
            log.info("answer engine ready in %.1f s", time.perf_counter() - started)
        finally:
            self.engine_ready.set()

    # -- the engine -------------------------------------------------------------------------
    @property
    def engine(self) -> Engine | None:
        """The engine if it is loaded, else None (use :meth:`get_engine` to wait for it)."""
        return self._engine

    async def get_engine(self) -> Engine:
        """The engine, waiting for it to finish loading if needed."""
        if self._engine is None:
            await self.engine_ready.wait()
        if self._engine is None:
            raise EngineUnavailable("the answer engine failed to load")
        return self._engine

    async def in_thread(self, func: Callable[..., R], /, *args: Any) -> R:
        """Run a blocking engine call off the event loop."""
        return await asyncio.to_thread(func, *args)

    async def suggestions(self, text: str, limit: int = 25) -> list[Suggestion]:
        """Autocomplete entries; empty while the engine loads or if it fails (logged).

        Autocomplete must answer within 3 s and cannot show an error to the user, so this never
        waits for the engine and never raises.
        """
        engine = self._engine
        if engine is None:
            return []
        try:
            return await asyncio.to_thread(engine.suggest, text, limit)
        except Exception:
            log.exception("autocomplete suggestions failed for %r", text[:100])
            return []

    # -- events -----------------------------------------------------------------------------
    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: questions in messages are handled by the ask cog's listener."""

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d guilds", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    # -- shutdown ---------------------------------------------------------------------------
    async def close(self) -> None:
        await super().close()
        if self._engine_task is not None and not self._engine_task.done():
            log.info("waiting for the engine to finish loading before shutting down")
            await asyncio.gather(self._engine_task, return_exceptions=True)
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close)
            log.info("answer engine closed")


class SpaceBot(SpaceBotBase):
    """One process, one gateway connection."""


class ShardedSpaceBot(SpaceBotBase, commands.AutoShardedBot):
    """Runs ``settings.shard_ids`` (or all) of ``settings.shard_count`` shards in this process."""


def create_bot(settings: Settings, **kwargs: Any) -> SpaceBotBase:
    """A :class:`ShardedSpaceBot` when ``shard_count`` is set, else a :class:`SpaceBot`."""
    if settings.shard_count:
        kwargs.setdefault("shard_count", settings.shard_count)
        if settings.shard_ids:
            kwargs.setdefault("shard_ids", list(settings.shard_ids))
        return ShardedSpaceBot(settings, **kwargs)
    return SpaceBot(settings, **kwargs)
