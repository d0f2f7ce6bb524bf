"""Error handling: users get a short private message with a reference code, the log the traceback.

:class:`SpaceTree` is the bot's command tree; its ``on_error`` handles every app-command error.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import discord
from discord import app_commands

log = logging.getLogger(__name__)


class EngineUnavailable(app_commands.AppCommandError):
    """The answer engine failed to load, so nothing can be answered."""


class NotModerator(app_commands.CheckFailure):
    """The user has neither Manage Server nor a moderator role."""


def new_reference() -> str:
    """A short code the user can quote and an operator can grep the log for."""
    return f"E{secrets.token_hex(4).upper()}"


def failure_text(reference: str) -> str:
    return f"Sorry, something went wrong on my side. If it keeps happening, quote reference `{reference}`."


def _command_name(interaction: discord.Interaction[Any]) -> str:
    command = interaction.command
    return command.qualified_name if command is not None else "unknown command"


async def send_private(interaction: discord.Interaction[Any], content: str) -> None:
    """Tell the user something only they can see, whatever state the interaction is in."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(content, ephemeral=True)
            return
        if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            # A public "thinking…" message would turn the first follow-up public: drop it.
            await interaction.delete_original_response()
        await interaction.followup.send(content, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not tell the user about a failure of %s: %s", _command_name(interaction), exc)


class SpaceTree(app_commands.CommandTree):
    """The command tree: one place where app-command errors become user messages and log records."""

    async def on_error(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(original, NotModerator):
            await send_private(interaction, "Only moderators can do that: you need Manage Server or a moderator role.")
            return
        if isinstance(original, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)):
            # Discord still shows a command this version of the bot changed or dropped.
            log.warning("stale command %r used: run `spacebot sync` (%s)", _command_name(interaction), original)
            await send_private(interaction, "That command is out of date here; the bot's operators need to re-sync it.")
            return
        if isinstance(original, EngineUnavailable):
            reference = new_reference()
            log.error("[%s] %s: the answer engine is not available", reference, _command_name(interaction))
            await send_private(interaction, f"The knowledge base is not available right now (reference `{reference}`).")
            return
        reference = new_reference()
        log.error(
            "[%s] app command %s failed for user %s",
            reference,
            _command_name(interaction),
            interaction.user.id if interaction.user else "?",
            exc_info=original,
        )
        await send_private(interaction, failure_text(reference))
