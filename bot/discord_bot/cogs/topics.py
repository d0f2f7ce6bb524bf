"""``/topics``: the topics of the knowledge base with their passage counts."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.embeds import topics_embed


class Topics(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot

    @app_commands.command(name="topics", description="List the topics the bot knows about")
    async def topics(self, interaction: discord.Interaction[SpaceBotBase]) -> None:
        await interaction.response.defer(thinking=True)
        engine = await self.bot.get_engine()
        topics = await self.bot.in_thread(engine.topics)
        status = await self.bot.in_thread(engine.status)
        await interaction.followup.send(embed=topics_embed(topics, kb_version=status.kb_version))


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Topics(bot))
