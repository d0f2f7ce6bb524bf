"""``/kb reload``, ``/kb status``, and the moderators' loop: ``/kb feedback``, ``/kb gaps``, ``/kb stats``.

All for moderators (Manage Server, or a moderator role of the environment or of ``/settings``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot.checks import MODERATOR_PERMISSIONS, moderator_only
from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.embeds import reload_embed, status_embed
from bot.discord_bot.moderation import DATABASE_DOWN, NO_DATABASE, FeedbackBrowser, gaps_embed, stats_embed
from bot.discord_bot.persistence import BotStorage
from bot.storage import Heartbeat, StorageError
from bot.storage.errors import describe

log = logging.getLogger(__name__)

FORGET_SILENT_PROCESSES = dt.timedelta(hours=1)  # a process that stopped without saying so
RELOAD_BUSY = "A reload is already running. Wait for it to finish, then try again."
DEFAULT_DAYS = 30
T = TypeVar("T")
Days = app_commands.Range[int, 1, 3650]


def actor_name(user: discord.abc.User) -> str:
    return f"{user.name} ({user.id})"


class KnowledgeAdmin(commands.Cog):
    kb = app_commands.Group(
        name="kb",
        description="Manage the knowledge base (moderators)",
        guild_only=True,
        default_permissions=MODERATOR_PERMISSIONS,
    )

    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot
        self._reload_lock = asyncio.Lock()

    @kb.command(
        name="reload", description="Reload the knowledge files; if they are invalid the old version keeps answering"
    )
    @moderator_only()
    async def reload(self, interaction: discord.Interaction[SpaceBotBase]) -> None:
        if self._reload_lock.locked():
            await interaction.response.send_message(RELOAD_BUSY, ephemeral=True)
            return
        async with self._reload_lock:
            await interaction.response.defer(ephemeral=True, thinking=True)
            engine = await self.bot.get_engine()
            if engine.reload_in_progress:
                await interaction.followup.send(RELOAD_BUSY, ephemeral=True)
                return
            actor = actor_name(interaction.user)
            log.info("knowledge base reload requested by %s", actor)
            # With PostgreSQL the files it validated are published for every other process.
            report = await (self.bot.db.sync.reload_and_publish(engine, actor) if self.bot.db is not None
                            else engine.reload(actor=actor))
        if report.ok:
            log.info("knowledge base reloaded to %s by %s", report.kb_version, actor)
        else:
            log.warning(
                "reload by %s refused: %d errors; still serving %s", actor, len(report.errors), report.kb_version
            )
        await interaction.followup.send(embed=reload_embed(report), ephemeral=True)

    @kb.command(name="status", description="Knowledge base version, size, model, latency, and every process")
    @moderator_only()
    async def status(self, interaction: discord.Interaction[SpaceBotBase]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        engine = await self.bot.get_engine()
        status = await self.bot.in_thread(engine.status)
        processes, this_process = await self._processes()
        embed = status_embed(status, processes=processes, this_process=this_process)
        await interaction.followup.send(embed=embed, ephemeral=True)

    async def _processes(self) -> tuple[list[Heartbeat] | str | None, str | None]:
        """Every process's heartbeat (silent ones forgotten after a while) and this one's id; None: no database."""
        db = self.bot.db
        if db is None:
            return None, None
        try:
            return await db.sync.processes(forget_after=FORGET_SILENT_PROCESSES), db.sync.process_id
        except StorageError as exc:
            log.warning("/kb status: %s", describe(exc))
            return "The database is unavailable: processes unknown.", None


    # -- the moderators' loop -----------------------------------------------------------------
    async def _database(self, interaction: discord.Interaction[SpaceBotBase]) -> BotStorage | None:
        """Defer privately; the bot's database, or None after telling the moderator there is none."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if self.bot.db is None:
            await interaction.followup.send(NO_DATABASE, ephemeral=True)
        return self.bot.db

    def _kb_version(self) -> str | None:
        engine = self.bot.engine
        return engine.snapshot.version if engine is not None else None

    @kb.command(name="feedback", description="Review reports on answers (Wrong, Outdated, Bad source), newest first")
    @app_commands.describe(status="Which reports (default: open)")
    @moderator_only()
    async def feedback(
        self, interaction: discord.Interaction[SpaceBotBase],
        status: Literal["open", "resolved", "dismissed", "all"] = "open",
    ) -> None:
        db = await self._database(interaction)
        if db is None:
            return
        browser = FeedbackBrowser(db.storage, None if status == "all" else status, interaction.guild_id,
                                  self._kb_version)
        try:
            embed = await browser.load()
        except StorageError as exc:
            log.warning("/kb feedback: %s", describe(exc))
            await interaction.followup.send(DATABASE_DOWN, ephemeral=True)
            return
        await interaction.followup.send(embed=embed, view=browser, ephemeral=True)

    @kb.command(name="gaps", description="The questions the bot could not answer well, grouped")
    @app_commands.describe(days="How far back (default 30 days)")
    @moderator_only()
    async def gaps(self, interaction: discord.Interaction[SpaceBotBase], days: Days = DEFAULT_DAYS) -> None:
        await self._send_report(
            interaction, "/kb gaps",
            lambda db, since: db.storage.gap_groups(since, guild_id=interaction.guild_id),
            lambda groups: gaps_embed(groups, days), days,
        )

    @kb.command(name="stats", description="Questions answered and declined, helpful rate, top topics and reports")
    @app_commands.describe(days="How far back (default 30 days)")
    @moderator_only()
    async def stats(self, interaction: discord.Interaction[SpaceBotBase], days: Days = DEFAULT_DAYS) -> None:
        await self._send_report(
            interaction, "/kb stats",
            lambda db, since: db.storage.stats(since, guild_id=interaction.guild_id),
            lambda stats: stats_embed(stats, days), days,
        )

    async def _send_report(
        self, interaction: discord.Interaction[SpaceBotBase], command: str,
        fetch: Callable[[BotStorage, dt.datetime], Awaitable[T]], render: Callable[[T], discord.Embed], days: int,
    ) -> None:
        """Fetch a report for the last ``days`` days and send it privately, or say the database is down."""
        db = await self._database(interaction)
        if db is None:
            return
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        try:
            report = await fetch(db, since)
        except StorageError as exc:
            log.warning("%s: %s", command, describe(exc))
            await interaction.followup.send(DATABASE_DOWN, ephemeral=True)
            return
        await interaction.followup.send(embed=render(report), ephemeral=True)

async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(KnowledgeAdmin(bot))
