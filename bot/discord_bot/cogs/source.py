"""``/source passage:<id>``: one passage in full, with its citation."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.embeds import passage_embed, truncate

CHOICE_LIMIT = 100


class Source(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot

    @app_commands.command(name="source", description="Show one passage of the knowledge base in full")
    @app_commands.describe(passage="The passage id (start typing an id or a title)")
    async def source(self, interaction: discord.Interaction[SpaceBotBase], passage: str) -> None:
        await interaction.response.defer(thinking=True)
        engine = await self.bot.get_engine()
        found = await self.bot.in_thread(engine.passage, passage.strip())
        if found is None:
            await interaction.followup.send(self._not_found_text(passage))
            return
        await interaction.followup.send(embed=passage_embed(found))

    def _not_found_text(self, passage: str) -> str:
        suggestions = self.bot.suggestions(passage)
        ids = [s.passage_id for s in suggestions if s.passage_id][:3]
        text = f"No passage has the id `{truncate(passage, 100)}`."
        if ids:
            text += " Did you mean " + ", ".join(f"`{i}`" for i in dict.fromkeys(ids)) + "?"
        return discord.utils.escape_mentions(text)

    @source.autocomplete("passage")
    async def passage_autocomplete(
        self, interaction: discord.Interaction[SpaceBotBase], current: str
    ) -> list[app_commands.Choice[str]]:
        suggestions = self.bot.suggestions(current)
        choices: dict[str, app_commands.Choice[str]] = {}
        for suggestion in suggestions:
            if not suggestion.passage_id or suggestion.passage_id in choices:
                continue
            name = truncate(f"{suggestion.passage_id}: {suggestion.label}", CHOICE_LIMIT)
            choices[suggestion.passage_id] = app_commands.Choice(name=name, value=suggestion.passage_id[:CHOICE_LIMIT])
        return list(choices.values())[:25]


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Source(bot))
