"""Feedback buttons under each answer: Helpful, Wrong, Outdated, Bad source.

The buttons are :class:`discord.ui.DynamicItem` s whose custom id is only ``spacebot:fb:<vote>``:
what a vote records (the question, the passage ids, the knowledge-base version) is read back from
the answer embed the button sits under, so the buttons keep working after a restart and no id
limit is ever hit. Wrong, Outdated and Bad source first open a short modal for an optional note.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.discord_bot.embeds import FIELD_VALUE_LIMIT, asked_question, fit_embed, truncate
from bot.storage import REPORT_KINDS, FeedbackVote, StorageError, VoteResult
from bot.storage.errors import describe
from bot.storage.records import VoteKind

log = logging.getLogger(__name__)

CUSTOM_ID_PREFIX = "spacebot:fb:"
BUTTONS: tuple[tuple[VoteKind, str, discord.ButtonStyle], ...] = (
    ("helpful", "Helpful", discord.ButtonStyle.success),
    ("wrong", "Wrong", discord.ButtonStyle.danger),
    ("outdated", "Outdated", discord.ButtonStyle.secondary),
    ("bad_source", "Bad source", discord.ButtonStyle.secondary),
)
VOTE_LABELS: dict[str, str] = {vote: label for vote, label, _ in BUTTONS}
RECORDED = "Thanks, recorded."
NOT_RECORDED = "Not recorded: the database is unavailable. Please try again later."
NO_DATABASE = "Not recorded: feedback is not set up on this bot."
NOT_AN_ANSWER = "Not recorded: I could not read the answer this button belongs to."
NOTE_LIMIT = 500
REPORT_COLOUR = discord.Colour.orange()

_PASSAGE_ID = re.compile(r"passage `([^`]+)`")
_KB_VERSION = re.compile(r"Knowledge base (\S+)")


@dataclass(frozen=True)
class AnswerFacts:
    """What a vote needs to know about the answer, as read from its message."""

    message_id: int
    question: str
    passage_ids: tuple[str, ...]
    kb_version: str
    message_link: str

    @property
    def lead_passage_id(self) -> str | None:
        return self.passage_ids[0] if self.passage_ids else None


def answer_facts(message: discord.Message | None) -> AnswerFacts | None:
    """The question, passage ids (lead first) and kb_version of one of the bot's answer messages."""
    if message is None:
        return None
    for embed in message.embeds:
        question = asked_question(embed)
        if question is None:
            continue
        ids = dict.fromkeys(m for field in embed.fields for m in _PASSAGE_ID.findall(field.value or ""))
        version = _KB_VERSION.match(embed.footer.text or "")
        return AnswerFacts(
            message_id=message.id, question=question, passage_ids=tuple(ids),
            kb_version=version.group(1) if version else "unknown", message_link=message.jump_url,
        )
    return None


def feedback_view() -> discord.ui.View:
    """The four buttons, to send with an answer (persistent: handled by :class:`FeedbackButton`)."""
    view = discord.ui.View(timeout=None)
    for vote, _, _ in BUTTONS:
        view.add_item(FeedbackButton(vote))
    return view


def report_embed(vote: FeedbackVote, report_id: int) -> discord.Embed:
    """The moderator log channel's post about a new Wrong/Outdated/Bad source report."""
    embed = discord.Embed(
        title=f"Feedback #{report_id}: {VOTE_LABELS[vote.vote]}",
        description=truncate(vote.question, 1000), colour=REPORT_COLOUR,
    )
    passages = ", ".join(f"`{pid}`" for pid in vote.passage_ids) or "none"
    embed.add_field(name="Passages (lead first)", value=truncate(passages, FIELD_VALUE_LIMIT), inline=False)
    if vote.note:
        embed.add_field(name="Note", value=truncate(vote.note, FIELD_VALUE_LIMIT), inline=False)
    if vote.message_link:
        embed.add_field(name="Answer", value=f"[Jump to the answer]({vote.message_link})", inline=False)
    embed.set_footer(text=f"Knowledge base {vote.kb_version} · /kb feedback to review")
    return fit_embed(embed)


async def record_vote(
    interaction: discord.Interaction[Any], facts: AnswerFacts, vote: VoteKind, note: str | None = None
) -> None:
    """Store the vote and tell the clicker, privately, whether it was recorded."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    db = getattr(interaction.client, "db", None)
    if db is None:
        await interaction.followup.send(NO_DATABASE, ephemeral=True)
        return
    feedback = FeedbackVote(
        message_id=facts.message_id, user_id=interaction.user.id, vote=vote, question=facts.question,
        lead_passage_id=facts.lead_passage_id, passage_ids=facts.passage_ids, kb_version=facts.kb_version,
        guild_id=interaction.guild_id, channel_id=interaction.channel_id, message_link=facts.message_link,
        note=(note or "").strip() or None,
    )
    try:
        result = await db.storage.record_feedback(feedback)
    except StorageError as exc:
        log.warning("feedback %s on message %s not recorded: %s", vote, facts.message_id, describe(exc))
        await interaction.followup.send(NOT_RECORDED, ephemeral=True)
        return
    await interaction.followup.send(RECORDED, ephemeral=True)
    await _post_to_log_channel(interaction, feedback, result)


async def _post_to_log_channel(interaction: discord.Interaction[Any], vote: FeedbackVote, result: VoteResult) -> None:
    db = interaction.client.db
    settings = db.settings_for(interaction.guild_id) if db is not None else None
    if not result.is_new_report or settings is None or settings.log_channel_id is None:
        return
    channel = interaction.client.get_partial_messageable(settings.log_channel_id, guild_id=interaction.guild_id)
    try:
        await channel.send(embed=report_embed(vote, result.report.id))
    except discord.HTTPException as exc:
        log.warning("could not post report #%s to log channel %s: %s", result.report.id, channel.id, exc)


class NoteModal(discord.ui.Modal):
    """"What is wrong?": an optional note, then the vote is recorded."""

    note: discord.ui.TextInput[NoteModal] = discord.ui.TextInput(
        label="What is wrong? (optional)", style=discord.TextStyle.paragraph, required=False, max_length=NOTE_LIMIT,
        placeholder="For example: this changed in 2026, see ...",
    )

    def __init__(self, facts: AnswerFacts, vote: VoteKind) -> None:
        super().__init__(title=f"Report: {VOTE_LABELS[vote]}", timeout=600)
        self.facts = facts
        self.vote = vote

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await record_vote(interaction, self.facts, self.vote, self.note.value)


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"spacebot:fb:(?P<vote>helpful|wrong|outdated|bad_source)",
):
    def __init__(self, vote: VoteKind) -> None:
        _, label, style = next(button for button in BUTTONS if button[0] == vote)
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=f"{CUSTOM_ID_PREFIX}{vote}"))
        self.vote: VoteKind = vote

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(match["vote"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        facts = answer_facts(interaction.message)
        if facts is None:
            await interaction.response.send_message(NOT_AN_ANSWER, ephemeral=True)
            return
        if self.vote in REPORT_KINDS:
            await interaction.response.send_modal(NoteModal(facts, self.vote))
            return
        await record_vote(interaction, facts, self.vote)
