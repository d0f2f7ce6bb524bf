"""What ``/kb feedback``, ``/kb gaps`` and ``/kb stats`` show: embeds, and the report browser.

The browser is a private, short-lived view (one report per page, Previous/Next, Resolve with an
optional note, Dismiss); it reads the database only when a moderator clicks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

import discord

from bot.discord_bot.embeds import FIELD_VALUE_LIMIT, fit_embed, truncate
from bot.discord_bot.feedback import REPORT_COLOUR, VOTE_LABELS
from bot.storage import FeedbackReport, GapGroup, Stats, Storage, StorageError
from bot.storage.errors import describe
from bot.storage.records import ReportStatus

log = logging.getLogger(__name__)

DATABASE_DOWN = "The database is unavailable right now; try again later."
NO_DATABASE = "This bot has no database configured, so there is nothing to show."
BROWSER_TIMEOUT = 600.0
RESOLUTION_LIMIT = 500

KbVersion = Callable[[], str | None]


def _when(moment: dt.datetime) -> str:
    return discord.utils.format_dt(moment, "R")


def report_page_embed(report: FeedbackReport | None, position: int, total: int, status: str) -> discord.Embed:
    if report is None:
        return discord.Embed(title=f"No {status} reports", description="Nothing to review.", colour=REPORT_COLOUR)
    embed = discord.Embed(
        title=f"#{report.id} {VOTE_LABELS.get(report.vote, report.vote)} ({report.status})",
        description=truncate(report.question or "(question text deleted after the retention period)", 1000),
        colour=REPORT_COLOUR,
    )
    passages = ", ".join(f"`{pid}`" for pid in report.passage_ids) or "none"
    embed.add_field(name="Passages (lead first)", value=truncate(passages, FIELD_VALUE_LIMIT), inline=False)
    if report.note:
        embed.add_field(name="Note", value=truncate(report.note, FIELD_VALUE_LIMIT), inline=False)
    if report.resolution_note or report.fixed_in:
        fixed = f" (fixed in {report.fixed_in})" if report.fixed_in else ""
        embed.add_field(name="Resolution", value=truncate(f"{report.resolution_note or ''}{fixed}".strip(), 1000))
    if report.message_link:
        embed.add_field(name="Answer", value=f"[Jump to the answer]({report.message_link})", inline=False)
    embed.set_footer(text=f"Report {position + 1} of {total} · knowledge base {report.kb_version}")
    embed.timestamp = report.created_at
    return fit_embed(embed)


def gaps_embed(groups: Sequence[GapGroup], days: int) -> discord.Embed:
    embed = discord.Embed(title=f"Questions I could not answer well, last {days} days", colour=REPORT_COLOUR)
    if not groups:
        embed.description = "No gaps recorded."
    for group in groups[:10]:
        topics = f" · near {', '.join(group.topics[:3])}" if group.topics else ""
        value = f"{group.count}× · first {_when(group.first_seen)}, last {_when(group.last_seen)}{topics}"
        embed.add_field(name=truncate(group.question, 250), value=truncate(value, FIELD_VALUE_LIMIT), inline=False)
    return fit_embed(embed)


def stats_embed(stats: Stats, days: int) -> discord.Embed:
    embed = discord.Embed(title=f"Questions in the last {days} days", colour=REPORT_COLOUR)
    declined = ", ".join(f"{reason} {count}" for reason, count in sorted(stats.declined.items())) or "none"
    embed.add_field(name="Asked", value=str(stats.questions))
    embed.add_field(name="Answered", value=str(stats.answered))
    embed.add_field(name="Declined", value=truncate(declined, FIELD_VALUE_LIMIT))
    rate = "no votes yet" if stats.helpful_rate is None else f"{stats.helpful_rate:.0%}"
    embed.add_field(name="Helpful rate", value=rate)
    embed.add_field(name="Open reports", value=str(stats.open_reports))
    embed.add_field(name="Gaps", value=str(stats.gaps))
    for name, pairs in (("Top topics", stats.top_topics), ("Most reported passages", stats.top_reported_passages)):
        lines = "\n".join(f"`{key}` {count}" for key, count in pairs[:5]) or "none"
        embed.add_field(name=name, value=truncate(lines, FIELD_VALUE_LIMIT), inline=False)
    return fit_embed(embed)


class ResolveModal(discord.ui.Modal, title="Resolve the report"):
    note: discord.ui.TextInput[ResolveModal] = discord.ui.TextInput(
        label="Note (optional)", style=discord.TextStyle.paragraph, required=False, max_length=RESOLUTION_LIMIT,
    )

    def __init__(self, browser: FeedbackBrowser) -> None:
        super().__init__(timeout=BROWSER_TIMEOUT)
        self.browser = browser

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self.browser.change_status(interaction, "resolved", self.note.value.strip() or None)


class FeedbackBrowser(discord.ui.View):
    """One report per page; resolving records the knowledge-base version the fix is in."""

    def __init__(
        self, storage: Storage, status: ReportStatus | None, guild_id: int | None, kb_version: KbVersion
    ) -> None:
        super().__init__(timeout=BROWSER_TIMEOUT)
        self.storage = storage
        self.status = status
        self.guild_id = guild_id
        self.kb_version = kb_version
        self.position = 0
        self.total = 0
        self.report: FeedbackReport | None = None

    async def load(self) -> discord.Embed:
        """Read the current page (raises StorageError) and return its embed."""
        self.total = await self.storage.count_feedback(self.status, guild_id=self.guild_id)
        self.position = max(0, min(self.position, self.total - 1))
        page = await self.storage.list_feedback(self.status, limit=1, offset=self.position, guild_id=self.guild_id)
        self.report = page[0] if page else None
        self.previous.disabled = self.position == 0
        self.next.disabled = self.position >= self.total - 1
        self.resolve.disabled = self.dismiss.disabled = self.report is None or self.report.status != "open"
        return report_page_embed(self.report, self.position, self.total, self.status or "")

    async def show(self, interaction: discord.Interaction[Any]) -> None:
        """Re-read the page and update the browser message in place."""
        if not interaction.response.is_done():
            await interaction.response.defer()
        try:
            embed = await self.load()
        except StorageError as exc:
            log.warning("feedback browser: %s", describe(exc))
            await interaction.followup.send(DATABASE_DOWN, ephemeral=True)
            return
        await interaction.edit_original_response(embed=embed, view=self)

    async def change_status(
        self, interaction: discord.Interaction[Any], status: ReportStatus, note: str | None
    ) -> None:
        assert self.report is not None
        await interaction.response.defer()
        fixed_in = self.kb_version() if status == "resolved" else None
        try:
            await self.storage.resolve_feedback(self.report.id, status, note=note, fixed_in=fixed_in)
        except StorageError as exc:
            log.warning("could not mark report #%s %s: %s", self.report.id, status, describe(exc))
            await interaction.followup.send(DATABASE_DOWN, ephemeral=True)
            return
        log.info("report #%s marked %s by %s", self.report.id, status, interaction.user.id)
        await self.show(interaction)

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        self.position -= 1
        await self.show(interaction)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        self.position += 1
        await self.show(interaction)

    @discord.ui.button(label="Resolve", style=discord.ButtonStyle.success)
    async def resolve(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        await interaction.response.send_modal(ResolveModal(self))

    @discord.ui.button(label="Dismiss", style=discord.ButtonStyle.danger)
    async def dismiss(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        await self.change_status(interaction, "dismissed", None)
