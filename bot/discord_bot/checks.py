"""Permission checks. One decorator both hides a command from non-moderators in Discord's UI
(``default_permissions``) and enforces the rule at run time (an app-command check)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.discord_bot.errors import NotModerator

T = TypeVar("T")

#: What Discord's UI asks of a member before it shows a moderator command (admins can widen it).
MODERATOR_PERMISSIONS = discord.Permissions(manage_guild=True)


def is_moderator(interaction: discord.Interaction[Any], mod_role_ids: Iterable[int]) -> bool:
    """Manage Server in this channel, or any role listed in ``settings.mod_role_ids``."""
    if interaction.guild is None or not isinstance(interaction.user, discord.Member):
        return False
    if interaction.permissions.manage_guild:
        return True
    wanted = set(mod_role_ids)
    return any(role.id in wanted for role in interaction.user.roles)


def moderator_role_ids(interaction: discord.Interaction[Any]) -> tuple[int, ...]:
    """``SPACEBOT_MOD_ROLE_IDS`` (every server) plus the server's own moderator roles (``/settings``)."""
    settings = getattr(interaction.client, "settings", None)
    role_ids = tuple(settings.mod_role_ids) if settings is not None else ()
    db = getattr(interaction.client, "db", None)
    server = db.settings_for(interaction.guild_id) if db is not None else None
    return role_ids + (server.moderator_role_ids if server is not None else ())


def _moderator_predicate(interaction: discord.Interaction[Any]) -> bool:
    if not is_moderator(interaction, moderator_role_ids(interaction)):
        raise NotModerator("moderators only")
    return True


def moderator_only() -> Callable[[T], T]:
    """Decorator for app commands reserved to moderators (Manage Server or a moderator role).

    Discord applies ``default_permissions`` to top-level commands only: a group of moderator
    subcommands passes ``default_permissions=MODERATOR_PERMISSIONS`` itself (see ``cogs/kb.py``).
    """

    def decorator(func: T) -> T:
        func = app_commands.default_permissions(MODERATOR_PERMISSIONS)(func)
        return app_commands.check(_moderator_predicate)(func)

    return decorator
