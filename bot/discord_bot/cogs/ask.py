"""Asking questions: ``/ask``, the "Ask the bot about this" message menu, mentions and DMs."""

from __future__ import annotations

import contextlib
import logging
import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.cooldown import cooldown_notice
from bot.discord_bot.embeds import answer_embed, truncate
from bot.discord_bot.errors import EngineUnavailable, failure_text, new_reference

log = logging.getLogger(__name__)

CONTEXT_MENU_NAME = "Ask the bot about this"
CHOICE_LIMIT = 100  # Discord's limit on an autocomplete choice's name and string value
EMPTY_MENTION_HINT = "Ask me a space-policy question, for example: *when is Russia leaving the ISS?*"


def strip_bot_mention(content: str, bot_id: int) -> str:
    """The question without the ``<@id>`` / ``<@!id>`` mentions of the bot."""
    return re.sub(rf"<@!?{bot_id}>", " ", content).strip()


def too_long_text(length: int, limit: int) -> str:
    return f"That question is {length} characters long; please keep it under {limit} characters."


class Ask(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot
        self.context_menu = app_commands.ContextMenu(name=CONTEXT_MENU_NAME, callback=self.ask_about_message)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.context_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.context_menu.name, type=self.context_menu.type)

    # -- shared checks ----------------------------------------------------------------------
    def refusal(self, user_id: int, question: str) -> str | None:
        """Why this question won't be answered now (too long, cooldown), or None."""
        limit = self.bot.settings.max_question_length
        if len(question) > limit:
            return too_long_text(len(question), limit)
        retry_after = self.bot.cooldown.hit(user_id)
        if retry_after is not None:
            return cooldown_notice(retry_after)
        return None

    async def answer_embed_for(self, question: str) -> discord.Embed:
        engine = await self.bot.get_engine()
        answer = await engine.answer_async(question)
        return answer_embed(answer, scope=engine.scope)

    # -- /ask -------------------------------------------------------------------------------
    @app_commands.command(name="ask", description="Ask a space-policy question")
    @app_commands.describe(question="Your question", private="Only you see the answer")
    async def ask(self, interaction: discord.Interaction[SpaceBotBase], question: str, private: bool = False) -> None:
        question = question.strip()
        refusal = self.refusal(interaction.user.id, question) if question else EMPTY_MENTION_HINT
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=private, thinking=True)
        embed = await self.answer_embed_for(question)
        await interaction.followup.send(embed=embed, ephemeral=private)

    @ask.autocomplete("question")
    async def ask_autocomplete(
        self, interaction: discord.Interaction[SpaceBotBase], current: str
    ) -> list[app_commands.Choice[str]]:
        suggestions = await self.bot.suggestions(current)
        choices: list[app_commands.Choice[str]] = []
        seen: set[str] = set()
        for suggestion in suggestions:
            label = truncate(suggestion.label, CHOICE_LIMIT)
            if label and label not in seen:
                seen.add(label)
                choices.append(app_commands.Choice(name=label, value=label))
        return choices[:25]

    # -- the message context menu -----------------------------------------------------------
    async def ask_about_message(self, interaction: discord.Interaction[SpaceBotBase], message: discord.Message) -> None:
        question = message.content.strip()
        if not question:
            await interaction.response.send_message("That message has no text I can read.", ephemeral=True)
            return
        refusal = self.refusal(interaction.user.id, question)
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        embed = await self.answer_embed_for(question)
        await interaction.followup.send(embed=embed)

    # -- mentions and DMs -------------------------------------------------------------------
    def _addressed_to_me(self, message: discord.Message) -> bool:
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return False
        if message.guild is None:
            return True
        return any(user.id == me.id for user in message.mentions)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self._addressed_to_me(message):
            return
        assert self.bot.user is not None
        question = strip_bot_mention(message.content, self.bot.user.id)
        try:
            await self._answer_message(message, question)
        except Exception:
            reference = new_reference()
            log.exception("[%s] answering message %s from user %s failed", reference, message.id, message.author.id)
            await self._reply_quietly(message, failure_text(reference))

    async def _answer_message(self, message: discord.Message, question: str) -> None:
        if not question:
            await message.reply(EMPTY_MENTION_HINT, mention_author=False)
            return
        refusal = self.refusal(message.author.id, question)
        if refusal is not None:
            await self._notify_privately(message, refusal)
            return
        with contextlib.suppress(discord.HTTPException):  # "typing…" is a nicety, never a blocker
            await message.channel.typing()
        try:
            embed = await self.answer_embed_for(question)
        except EngineUnavailable:
            await message.reply("The knowledge base is not available right now.", mention_author=False)
            return
        await message.reply(embed=embed, mention_author=False)

    async def _notify_privately(self, message: discord.Message, text: str) -> None:
        """In a DM, reply; in a server, DM the user, or react with ⏳ if their DMs are closed."""
        if message.guild is None:
            await message.reply(text, mention_author=False)
            return
        try:
            await message.author.send(text)
        except discord.HTTPException:
            await message.add_reaction("\N{HOURGLASS WITH FLOWING SAND}")

    async def _reply_quietly(self, message: discord.Message, text: str) -> None:
        try:
            await message.reply(text, mention_author=False)
        except discord.HTTPException as exc:
            log.warning("could not send the failure notice for message %s: %s", message.id, exc)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(Ask(bot))
