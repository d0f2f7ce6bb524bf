"""Asking questions: ``/ask``, the "Ask the bot about this" message menu, mentions and DMs.

Follow-ups: a reply to one of the bot's answers follows up on that answer's questions; in a DM, and
in a thread started from one of the bot's answers (``/ask thread:True`` opens one), each question
follows up on the last few asked there. The memory is :class:`ConversationMemory`: in memory only,
bounded, forgotten after an hour of silence. In a server channel outside such a thread, a mention
that is not a reply stands on its own: several people talk there at once.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.models import Answer
from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.conversations import ConversationMemory, extend, worth_remembering
from bot.discord_bot.cooldown import cooldown_notice
from bot.discord_bot.embeds import answer_embed, asked_question, truncate
from bot.discord_bot.errors import EngineUnavailable, failure_text, new_reference
from bot.discord_bot.feedback import feedback_view

log = logging.getLogger(__name__)

CONTEXT_MENU_NAME = "Ask the bot about this"
CHOICE_LIMIT = 100  # Discord's limit on an autocomplete choice's name and string value
EMPTY_MENTION_HINT = "Ask me a space-policy question, for example: *when is Russia leaving the ISS?*"
THREAD_NAME_LIMIT = 100  # Discord's limit on a thread name
THREAD_NAME_FALLBACK = "Follow-up questions"
THREAD_WELCOME = (
    "Mention me in this thread to ask a follow-up question (\"and who will deorbit it?\"): I keep the last "
    "few questions asked here for an hour."
)
THREAD_WELCOME_EVERY_MESSAGE = (
    "Ask a follow-up question in this thread (\"and who will deorbit it?\"), no mention needed: I answer every "
    "message here and keep the last few questions for an hour."
)
NO_THREAD_HERE = "I answered, but I can only open a thread from a public answer in a server's text channel."
THREAD_REFUSED = "I answered, but Discord did not let me open a thread here (I may lack the permission)."


def strip_bot_mention(content: str, bot_id: int) -> str:
    """The question without the ``<@id>`` / ``<@!id>`` mentions of the bot."""
    return re.sub(rf"<@!?{bot_id}>", " ", content).strip()


def too_long_text(length: int, limit: int) -> str:
    return f"That question is {length} characters long; please keep it under {limit} characters."


def thread_name(question: str) -> str:
    return truncate(" ".join(question.split()), THREAD_NAME_LIMIT) or THREAD_NAME_FALLBACK


def questions_behind(message: discord.Message, bot_id: int) -> tuple[str, ...] | None:
    """The question a message of the bot answered, read from its answer embed; None for any other message."""
    if message.author.id != bot_id:
        return None
    asked = next((question for question in map(asked_question, message.embeds) if question), None)
    return (asked,) if asked else None


class Ask(commands.Cog):
    def __init__(self, bot: SpaceBotBase, conversations: ConversationMemory | None = None) -> None:
        self.bot = bot
        self.conversations = conversations or ConversationMemory()
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

    async def answer(self, question: str, context: Sequence[str] = ()) -> tuple[Answer, discord.Embed]:
        engine = await self.bot.get_engine()
        answer = await engine.answer_async(question, context=tuple(context))
        return answer, answer_embed(answer, scope=engine.scope)

    def after_answer(self, answer: Answer, guild_id: int | None) -> dict[str, Any]:
        """Record the answer (queued, never awaited) and return the send options for it: the feedback
        buttons under an answer, unless the bot has no database or the server turned them off."""
        db = self.bot.db
        if db is None:
            return {}
        db.observe(answer, guild_id)
        settings = db.settings_for(guild_id)
        if not answer.answered or (settings is not None and not settings.feedback_buttons):
            return {}
        return {"view": feedback_view()}

    def private_by_default(self, guild_id: int | None) -> bool:
        """The server's "answers are ephemeral by default" setting (off outside servers and without a database)."""
        settings = self.bot.db.settings_for(guild_id) if self.bot.db is not None else None
        return settings is not None and settings.ephemeral_default

    # -- conversations ----------------------------------------------------------------------
    def conversation_key(self, channel_id: int | None, *, in_guild: bool) -> int | None:
        """The conversation a question in this channel belongs to: the DM channel, or a thread
        started from one of the bot's answers; None elsewhere (the question stands alone)."""
        if channel_id is None:
            return None
        if not in_guild or self.conversations.is_answer_thread(channel_id):
            return channel_id
        return None

    def follows_every_message(self, guild: discord.Guild) -> bool:
        """The server's setting (``/settings every_thread_message``): in a thread started from one of the
        bot's answers, every message is a follow-up, not only those that mention the bot. Read from the
        in-memory settings cache; off without a database, and without the message_content intent
        (Discord would deliver those messages with no text)."""
        db = self.bot.db
        if db is None or not self.bot.intents.message_content:
            return False
        return db.guild_settings.get(guild.id).answer_every_thread_message

    def remember(
        self, key: int | None, context: Sequence[str], answer: Answer, message_id: int | None
    ) -> tuple[str, ...]:
        """Record the question in its conversation and under the answer's message id (for replies);
        return the questions that led to this answer, its own last if it is worth remembering."""
        keep = worth_remembering(answer)
        questions = extend(context, answer.question, self.conversations.max_questions) if keep else tuple(context)
        if key is not None:
            self.conversations.record(key, answer.question, remember=keep)
        if message_id is not None:
            self.conversations.remember_answer(message_id, questions)
        return questions

    # -- /ask -------------------------------------------------------------------------------
    @app_commands.command(name="ask", description="Ask a space-policy question")
    @app_commands.describe(
        question="Your question",
        private="Only you see the answer (default: the server's setting)",
        thread="Open a thread from the answer for follow-up questions",
    )
    async def ask(
        self,
        interaction: discord.Interaction[SpaceBotBase],
        question: str,
        private: bool | None = None,
        thread: bool = False,
    ) -> None:
        if private is None:
            private = self.private_by_default(interaction.guild_id)
        question = question.strip()
        refusal = self.refusal(interaction.user.id, question) if question else EMPTY_MENTION_HINT
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=private, thinking=True)
        await self._answer_interaction(interaction, question, private=private, thread=thread)

    async def _answer_interaction(
        self, interaction: discord.Interaction[SpaceBotBase], question: str, *, private: bool, thread: bool = False
    ) -> None:
        key = self.conversation_key(interaction.channel_id, in_guild=interaction.guild_id is not None)
        context = self.conversations.context(key) if key is not None else ()
        answer, embed = await self.answer(question, context)
        extras = self.after_answer(answer, interaction.guild_id)
        sent = await interaction.followup.send(embed=embed, ephemeral=private, wait=True, **extras)
        questions = self.remember(key, context, answer, None if private else sent.id)
        if thread:
            await self._open_thread(interaction, sent, question, questions, private=private)

    async def _open_thread(
        self,
        interaction: discord.Interaction[SpaceBotBase],
        answer_message: discord.WebhookMessage,
        question: str,
        questions: Sequence[str],
        *,
        private: bool,
    ) -> None:
        """Start a thread from the answer; its conversation begins with the questions behind it."""
        channel = interaction.channel
        if private or not isinstance(channel, discord.TextChannel):
            await interaction.followup.send(NO_THREAD_HERE, ephemeral=True)
            return
        try:
            thread = await channel.create_thread(name=thread_name(question), message=answer_message)
        except discord.HTTPException as exc:
            log.warning("could not open a thread from answer %s in channel %s: %s", answer_message.id, channel.id, exc)
            await interaction.followup.send(THREAD_REFUSED, ephemeral=True)
            return
        self.conversations.open_thread(thread.id, questions)
        every_message = interaction.guild is not None and self.follows_every_message(interaction.guild)
        try:
            await thread.send(THREAD_WELCOME_EVERY_MESSAGE if every_message else THREAD_WELCOME)
        except discord.HTTPException as exc:  # the thread works without its welcome line
            log.warning("could not post the welcome line in thread %s: %s", thread.id, exc)

    @ask.autocomplete("question")
    async def ask_autocomplete(
        self, interaction: discord.Interaction[SpaceBotBase], current: str
    ) -> list[app_commands.Choice[str]]:
        suggestions = self.bot.suggestions(current)
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
        await self._answer_interaction(interaction, question, private=False)

    # -- mentions and DMs -------------------------------------------------------------------
    def _addressed_to_me(self, message: discord.Message) -> bool:
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return False
        if message.guild is None:
            return True
        if not self.answers_mentions_here(message):
            return False
        if any(user.id == me.id for user in message.mentions):
            return True
        if not message.content.strip():  # an image or a sticker: nothing to answer, and no hint to post
            return False
        return self.follows_every_message(message.guild) and self.conversations.is_answer_thread(message.channel.id)

    def _message_context(self, message: discord.Message, key: int | None) -> tuple[str, ...]:
        """A reply to one of the bot's answers follows up on that answer's questions; any other
        message on its conversation's (none outside DMs and answer threads)."""
        reference = message.reference
        if reference is not None and reference.message_id is not None:
            remembered = self.conversations.answer_context(reference.message_id)
            if remembered is None and isinstance(reference.resolved, discord.Message) and self.bot.user is not None:
                remembered = questions_behind(reference.resolved, self.bot.user.id)  # e.g. sent before a restart
            if remembered:  # a reply to a declined first question has nothing to add: fall back
                return remembered
        return self.conversations.context(key) if key is not None else ()

    def answers_mentions_here(self, message: discord.Message) -> bool:
        """The server's setting: answer mentions in every channel, in listed channels (a thread goes by
        its parent), or nowhere."""
        db = self.bot.db
        if db is None or message.guild is None:
            return True
        channel_id = getattr(message.channel, "parent_id", None) or message.channel.id
        return db.guild_settings.get(message.guild.id).answers_mentions_in(channel_id)

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
        key = self.conversation_key(message.channel.id, in_guild=message.guild is not None)
        context = self._message_context(message, key)
        try:
            answer, embed = await self.answer(question, context)
        except EngineUnavailable:
            await message.reply("The knowledge base is not available right now.", mention_author=False)
            return
        extras = self.after_answer(answer, message.guild.id if message.guild else None)
        sent = await message.reply(embed=embed, mention_author=False, **extras)
        self.remember(key, context, answer, sent.id)

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
