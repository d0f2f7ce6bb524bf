"""``/settings`` (Manage Server): where the bot answers mentions, whether it answers every message in
threads started from its answers, private answers by default, the server's moderator roles, feedback
buttons, the moderator log channel. Kept in the database and cached in memory, so no question waits on
the database to learn them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_bot.checks import MODERATOR_PERMISSIONS
from bot.discord_bot.client import SpaceBotBase
from bot.discord_bot.embeds import fit_embed
from bot.storage import GuildSettings, StorageError
from bot.storage.errors import describe

log = logging.getLogger(__name__)

MANAGE_SERVER_ONLY = "Only members with Manage Server can see or change these settings."
NO_DATABASE = "This bot has no database configured, so its settings cannot be changed."
NOT_SAVED = "Not saved: the database is unavailable. Please try again later."
MENTIONS_TEXT = {"all": "in every channel", "listed": "only in the listed channels", "none": "nowhere"}
EVERY_MESSAGE_WITHOUT_INTENT = (
    "on, but not in effect: this bot runs without Discord's Message Content intent "
    "(SPACEBOT_MESSAGE_CONTENT), so it still answers mentions only"
)


def _toggled(ids: Sequence[int], item: int) -> tuple[int, ...]:
    """``ids`` with ``item`` removed if it was there, added if not."""
    return tuple(i for i in ids if i != item) if item in ids else (*ids, item)


def every_message_text(settings: GuildSettings, *, reads_messages: bool) -> str:
    if not settings.answer_every_thread_message:
        return "off (mentions only)"
    return "on" if reads_messages else EVERY_MESSAGE_WITHOUT_INTENT


def settings_embed(settings: GuildSettings, *, reads_messages: bool = True) -> discord.Embed:
    """The server's settings; ``reads_messages``: the bot has the message_content intent."""
    channels = " ".join(f"<#{cid}>" for cid in settings.mention_channel_ids) or "none"
    roles = " ".join(f"<@&{rid}>" for rid in settings.moderator_role_ids) or "none (Manage Server only)"
    embed = discord.Embed(title="Settings of this server", colour=discord.Colour.blurple())
    embed.add_field(name="Answers mentions", value=MENTIONS_TEXT[settings.answer_mentions], inline=False)
    embed.add_field(name="Listed channels", value=channels, inline=False)
    embed.add_field(
        name="Answers every message in threads started from its answers",
        value=every_message_text(settings, reads_messages=reads_messages), inline=False,
    )
    embed.add_field(name="/ask private by default", value="yes" if settings.ephemeral_default else "no")
    embed.add_field(name="Feedback buttons", value="on" if settings.feedback_buttons else "off")
    log_channel = f"<#{settings.log_channel_id}>" if settings.log_channel_id else "none"
    embed.add_field(name="Moderator log channel", value=log_channel)
    embed.add_field(name="Moderator roles", value=roles, inline=False)
    embed.set_footer(text="Change one with /settings <option>; a channel or role option toggles it.")
    return fit_embed(embed)


class ServerSettings(commands.Cog):
    def __init__(self, bot: SpaceBotBase) -> None:
        self.bot = bot

    @app_commands.command(name="settings", description="Show or change this server's bot settings")
    @app_commands.guild_only()
    @app_commands.default_permissions(MODERATOR_PERMISSIONS)
    @app_commands.describe(
        mentions="Where the bot answers mentions",
        mention_channel="Add or remove a channel where mentions are answered (with mentions: listed)",
        every_thread_message="In threads started from an answer, answer every message, not only mentions",
        private="Whether /ask answers are private by default",
        moderator_role="Add or remove a moderator role",
        buttons="Feedback buttons under answers",
        log_channel="Where new reports on answers are posted",
        no_log_channel="Stop posting reports",
    )
    async def settings(  # noqa: PLR0917 (one Discord option each)
        self, interaction: discord.Interaction[SpaceBotBase],
        mentions: Literal["all", "listed", "none"] | None = None,
        mention_channel: discord.TextChannel | None = None,
        every_thread_message: bool | None = None,
        private: bool | None = None,
        moderator_role: discord.Role | None = None,
        buttons: bool | None = None,
        log_channel: discord.TextChannel | None = None,
        no_log_channel: bool = False,
    ) -> None:
        if not interaction.permissions.manage_guild:
            await interaction.response.send_message(MANAGE_SERVER_ONLY, ephemeral=True)
            return
        db, guild_id = self.bot.db, interaction.guild_id
        if db is None or guild_id is None:
            await interaction.response.send_message(NO_DATABASE, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        current = db.guild_settings.get(guild_id)
        changes: dict[str, Any] = {}
        if mentions is not None:
            changes["answer_mentions"] = mentions
        if mention_channel is not None:
            changes["mention_channel_ids"] = _toggled(current.mention_channel_ids, mention_channel.id)
        if every_thread_message is not None:
            changes["answer_every_thread_message"] = every_thread_message
        if private is not None:
            changes["ephemeral_default"] = private
        if moderator_role is not None:
            changes["moderator_role_ids"] = _toggled(current.moderator_role_ids, moderator_role.id)
        if buttons is not None:
            changes["feedback_buttons"] = buttons
        if log_channel is not None or no_log_channel:
            changes["log_channel_id"] = None if no_log_channel else log_channel.id if log_channel else None
        if changes:
            try:
                current = await db.guild_settings.update(guild_id, **changes)
            except StorageError as exc:
                log.warning("settings of server %s not saved: %s", guild_id, describe(exc))
                await interaction.followup.send(NOT_SAVED, ephemeral=True)
                return
            log.info("server %s settings changed by %s: %s", guild_id, interaction.user.id, sorted(changes))
        embed = settings_embed(current, reads_messages=self.bot.intents.message_content)
        await interaction.followup.send(embed=embed, ephemeral=True)


async def setup(bot: SpaceBotBase) -> None:
    await bot.add_cog(ServerSettings(bot))
