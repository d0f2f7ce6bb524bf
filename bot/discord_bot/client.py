"""The bot client: minimal intents, no pings, cogs loaded in ``setup_hook``, engine loaded off the loop.

If the engine cannot be loaded the bot closes itself (``engine_error`` says why), so a supervisor
restarts the process instead of it answering every question with an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord.ext import commands

from bot.core.engine import Engine
from bot.core.models import Suggestion
from bot.discord_bot.config import DiscordSettings
from bot.discord_bot.cooldown import UserCooldown
from bot.discord_bot.errors import EngineUnavailable, SpaceTree

if TYPE_CHECKING:  # imported when needed: the storage layer loads SQLAlchemy and Alembic, which log on import
    from bot.discord_bot.persistence import BotStorage
    from bot.storage import StorageSettings, WriteQueue

log = logging.getLogger(__name__)

EngineLoader = Callable[[DiscordSettings], Engine]
R = TypeVar("R")

DEFAULT_COGS: tuple[str, ...] = (
    "bot.discord_bot.cogs.ask",
    "bot.discord_bot.cogs.source",
    "bot.discord_bot.cogs.topics",
    "bot.discord_bot.cogs.kb",
    "bot.discord_bot.cogs.index_watch",
    "bot.discord_bot.cogs.cluster",
    "bot.discord_bot.cogs.shards",
    "bot.discord_bot.cogs.feedback",
    "bot.discord_bot.cogs.retention",
    "bot.discord_bot.cogs.server_settings",
    "bot.discord_bot.cogs.privacy",
)

#: Autocomplete matches at most this much of what the user typed: Discord shows choices of at most
#: 100 characters, and fuzzy matching a 6000-character option value would take a second of CPU.
AUTOCOMPLETE_INPUT_LIMIT = 100

VOICE_WARNING = "voice will NOT be supported"


class _VoiceWarningsToDebug(logging.Filter):
    """discord.py warns at every start that PyNaCl and davey (voice) are missing; this bot has no
    voice, so those two records are demoted to DEBUG: shown only when the log level is DEBUG.
    Every other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or VOICE_WARNING not in record.getMessage():
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # Handlers usually have no level of their own (basicConfig sets the root logger's): decide here.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_voice_warnings() -> None:
    """Install the filter on ``discord.client`` (once; it lives as long as the process)."""
    logger = logging.getLogger("discord.client")
    if not any(isinstance(f, _VoiceWarningsToDebug) for f in logger.filters):
        logger.addFilter(_VoiceWarningsToDebug())


def default_intents(message_content: bool = False) -> discord.Intents:
    """Only what the bot needs: nothing privileged (no members), and message_content only when asked for."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = message_content
    return intents


def open_engine(settings: DiscordSettings) -> Engine:
    """The default engine loader (blocking: run it in a thread)."""
    return Engine.open(settings)


class SpaceBotBase(commands.Bot):
    """Shared behaviour of :class:`SpaceBot` and :class:`ShardedSpaceBot`.

    Give it either a ready ``engine`` or an ``engine_loader`` (called in a thread from
    ``setup_hook``); commands that arrive before the engine is ready wait for it. If the loader
    raises, the bot keeps the exception in ``engine_error`` and closes.

    With ``storage_settings`` the bot records answers, feedback and gaps in that database (opened in
    the background from ``setup_hook``: see :class:`BotStorage`); without, it records nothing and
    shows no feedback buttons. ``write_queue`` replaces the default one (tests use fewer retries).
    """

    def __init__(
        self,
        settings: DiscordSettings,
        *,
        engine_loader: EngineLoader | None = open_engine,
        engine: Engine | None = None,
        cogs: Sequence[str] = DEFAULT_COGS,
        sync_dev_guild: bool = True,
        storage_settings: StorageSettings | None = None,
        write_queue: WriteQueue | None = None,
        **options: Any,
    ) -> None:
        quiet_voice_warnings()  # before discord.Client.__init__, which logs them
        options.setdefault("intents", default_intents(settings.message_content))
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
        self.engine_error: Exception | None = None
        self._setup_done = asyncio.Event()
        self._engine: Engine | None = engine
        self._engine_loader = engine_loader
        self._engine_task: asyncio.Task[None] | None = None
        self._cog_names = tuple(cogs)
        self._sync_dev_guild = sync_dev_guild
        self.failed_cogs: list[str] = []
        self._storage_settings = storage_settings
        self._write_queue = write_queue
        self.db: BotStorage | None = None
        if engine is not None:
            self.engine_ready.set()

    # -- start-up ---------------------------------------------------------------------------
    async def setup_hook(self) -> None:
        if self._engine is None and self._engine_loader is not None:
            self._engine_task = asyncio.create_task(self._load_engine(), name="spacebot-engine-load")
        if self._storage_settings is not None:
            from bot.discord_bot.persistence import BotStorage

            self.db = BotStorage(self._storage_settings, lambda: self._engine, queue=self._write_queue)
            self.db.open_in_background()
        try:
            for name in self._cog_names:
                await self._load_cog(name)
            if self._sync_dev_guild and self.settings.dev_guild_id:
                await self._sync_to_dev_guild(self.settings.dev_guild_id)
        finally:
            self._setup_done.set()

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
        except Exception as exc:
            # The runner reports it in one line; the traceback is for whoever asks for DEBUG.
            log.debug("the answer engine failed to load", exc_info=True)
            self.engine_error = exc
            self.engine_ready.set()
            await self._setup_done.wait()  # closing mid-setup would fail the dev-guild sync instead
            if not self.is_closed():
                await self.close()
            return
        log.info("answer engine ready in %.1f s", time.perf_counter() - started)
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
        """Run a blocking engine call off the event loop (in the default pool)."""
        return await asyncio.to_thread(func, *args)

    def suggestions(self, text: str, limit: int = 25) -> list[Suggestion]:
        """Autocomplete entries; empty while the engine loads or if it fails (logged).

        Autocomplete must answer within 3 s and cannot show an error to the user, so this never
        waits for the engine and never raises. It runs on the event loop: fuzzy matching a short
        input against a few hundred labels takes about two milliseconds, and no thread pool (the
        engine's, busy with batches and reloads, or the default one) can make it wait.
        """
        engine = self._engine
        if engine is None:
            return []
        try:
            return engine.suggest(text[:AUTOCOMPLETE_INPUT_LIMIT], limit)
        except Exception:
            log.exception("autocomplete suggestions failed for %r", text[:AUTOCOMPLETE_INPUT_LIMIT])
            return []

    # -- events -----------------------------------------------------------------------------
    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: questions in messages are handled by the ask cog's listener."""

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d guilds", self.user, getattr(self.user, "id", "?"), len(self.guilds))

    # -- shutdown ---------------------------------------------------------------------------
    def _stop_waiting_for_guilds(self) -> None:
        """discord.py's READY handler waits ``guild_ready_timeout`` for more guilds, then dispatches
        "ready" through ``self.loop``, which ``close()`` sets to MISSING: closing during that wait (an
        engine that fails to load soon after connecting) left an AttributeError in a task nobody awaits.
        The handler ends quietly when cancelled. (Private attributes: discord.py has no public way.)"""
        state = self._connection
        waiting = [getattr(state, "_ready_task", None), *getattr(state, "_ready_tasks", {}).values()]
        for task in waiting:
            if task is not None and not task.done():
                task.cancel()

    async def close(self) -> None:
        self._stop_waiting_for_guilds()
        await super().close()
        loading = self._engine_task
        if loading is not None and not loading.done() and loading is not asyncio.current_task():
            log.info("waiting for the engine to finish loading before shutting down")
            await asyncio.gather(loading, return_exceptions=True)
        db, self.db = self.db, None
        if db is not None:
            await db.close()
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close)
            log.info("answer engine closed")


class SpaceBot(SpaceBotBase):
    """One process, one gateway connection."""


class ShardedSpaceBot(SpaceBotBase, commands.AutoShardedBot):
    """Runs ``settings.shard_ids`` (or all) of ``settings.shard_count`` shards in this process."""


def create_bot(settings: DiscordSettings, **kwargs: Any) -> SpaceBotBase:
    """A :class:`ShardedSpaceBot` when ``shard_count`` is set, else a :class:`SpaceBot`."""
    if settings.shard_count:
        kwargs.setdefault("shard_count", settings.shard_count)
        if settings.shard_ids:
            kwargs.setdefault("shard_ids", list(settings.shard_ids))
        return ShardedSpaceBot(settings, **kwargs)
    return SpaceBot(settings, **kwargs)
