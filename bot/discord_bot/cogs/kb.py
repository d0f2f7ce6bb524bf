"""``/kb reload`` and ``/kb status``, for moderators (Manage Server or a moderator role)."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot.checks import MODERATOR_PERMISSIONS, moderator_only
from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.embeds import reload_embed, status_embed

log = logging.getLogger(__name__)

RELOAD_BUSY = "A reload is already running. Wait for it to finish, then try again."


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
            report = await engine.reload(actor=actor)
        if report.ok:
            log.info("knowledge base reloaded to %s by %s", report.kb_version, actor)
        else:
            log.warning(
                "reload by %s refused: %d errors; still serving %s", actor, len(report.errors), report.kb_version
            )
        await interaction.followup.send(embed=reload_embed(report), ephemeral=True)

    @kb.command(name="status", description="Knowledge base version, size, model, last reload and latency")
    @moderator_only()
    async def status(self, interaction: discord.Interaction[SpaceBotBase]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        engine = await self.bot.get_engine()
        status = await self.bot.in_thread(engine.status)
        await interaction.followup.send(embed=status_embed(status), ephemeral=True)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(KnowledgeAdmin(bot))
