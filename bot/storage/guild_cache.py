"""Per-server settings in memory, so that no question waits on the database to learn where to answer."""

from __future__ import annotations

import logging
from typing import Any

from bot.storage.errors import StorageError, describe
from bot.storage.records import GuildSettings
from bot.storage.storage import Storage

log = logging.getLogger(__name__)


class GuildSettingsCache:
    """Reads come from memory (a server never configured, or not loaded yet, gets the defaults);
    changes are written through to the database and then cached."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._settings: dict[int, GuildSettings] = {}

    def get(self, guild_id: int) -> GuildSettings:
        return self._settings.get(guild_id) or GuildSettings(guild_id=guild_id)

    async def load(self) -> bool:
        """Fill the cache from the database (on start); False, with a warning, if it is unavailable."""
        try:
            every = await self._storage.list_guild_settings()
        except StorageError as exc:
            log.warning("server settings not loaded, using the defaults until they are: %s", describe(exc))
            return False
        self._settings = {settings.guild_id: settings for settings in every}
        return True

    async def refresh(self, guild_id: int) -> GuildSettings:
        """Re-read one server's settings (another process changed them); raises StorageError."""
        settings = await self._storage.get_guild_settings(guild_id)
        self._settings[guild_id] = settings
        return settings

    async def update(self, guild_id: int, /, **changes: Any) -> GuildSettings:
        """Change some fields, in the database first; raises StorageError (the cache is then unchanged)."""
        settings = await self._storage.update_guild_settings(guild_id, **changes)
        self._settings[guild_id] = settings
        return settings
