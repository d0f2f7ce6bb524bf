"""Registers the feedback buttons (see ``bot/discord_bot/feedback.py``) so that the buttons under
answers sent before a restart keep working."""

from __future__ import annotations

from discord.ext import commands

from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.feedback import FeedbackButton


class Feedback(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(FeedbackButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(FeedbackButton)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Feedback(bot))
