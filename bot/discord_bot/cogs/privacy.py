"""``/privacy``: what the bot stores, and a button to delete one's own feedback reports."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot.client import SpaceBotBase
from bot.storage import StorageError
from bot.storage.errors import describe

log = logging.getLogger(__name__)

FORGET_LABEL = "Delete my reports"
UNAVAILABLE = "The database is unavailable right now: nothing was deleted. Please try again later."


def privacy_text(retention_days: int | None, report_count: int | None) -> str:
    lines = [
        "**What this bot stores**",
        "• Your questions are answered without being stored, except those it could not answer well: their text, "
        "time and server are kept so moderators can fill the gap (no user id).",
        "• When you click a feedback button: the vote, your optional note, the question, the answer's sources and a "
        "link to it, and a one-way hash of your user id (never the id itself).",
        "• Counts of questions per day, server and outcome.",
    ]
    if retention_days is not None:
        lines.append(f"Question texts are deleted after {retention_days} days; the counts stay.")
    else:
        lines.append("This bot has no database configured: it stores nothing.")
    if report_count is not None:
        lines.append(f"\nYou have **{report_count}** feedback report(s) stored.")
    return "\n".join(lines)


class ForgetMe(discord.ui.View):
    def __init__(self, user_id: int) -> None:
        super().__init__(timeout=300)
        self.user_id = user_id

    @discord.ui.button(label=FORGET_LABEL, style=discord.ButtonStyle.danger)
    async def forget(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        db = interaction.client.db
        try:
            deleted = await db.storage.forget_user(self.user_id)
        except StorageError as exc:
            log.warning("could not forget a user's reports: %s", describe(exc))
            await interaction.followup.send(UNAVAILABLE, ephemeral=True)
            return
        await interaction.followup.send(f"Deleted {deleted} report(s).", ephemeral=True)


class Privacy(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot

    @app_commands.command(name="privacy", description="What the bot stores about you, and deleting your reports")
    async def privacy(self, interaction: discord.Interaction[SpaceBotBase]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        db = self.bot.db
        if db is None:
            await interaction.followup.send(privacy_text(None, None), ephemeral=True)
            return
        try:
            count: int | None = await db.storage.count_user_reports(interaction.user.id)
        except StorageError as exc:
            log.warning("/privacy: %s", describe(exc))
            count = None
        text = privacy_text(db.storage.settings.retention_days, count)
        if count:
            await interaction.followup.send(text, view=ForgetMe(interaction.user.id), ephemeral=True)
        else:
            await interaction.followup.send(text, ephemeral=True)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Privacy(bot))
