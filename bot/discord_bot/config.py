"""Settings of ``spacebot run`` and ``spacebot sync``: the engine's, plus the Discord shell's own."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from bot.core.config import EngineSettings


class DiscordSettings(EngineSettings):
    """The engine settings and the bot's: token, dev guild, moderator roles, shards, cooldowns."""

    discord_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "discord_token")
    )
    dev_guild_id: int | None = None
    mod_role_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    cooldown_rate: int = Field(default=3, ge=1)
    cooldown_per: float = Field(default=30.0, gt=0)
    max_question_length: int = Field(default=500, ge=10)
    watch_interval: float = Field(default=10.0, gt=0)
    # The privileged Message Content intent: only servers that turn on "answer every message in answer
    # threads" (/settings) need it; without it Discord blanks the text of messages that don't mention the bot.
    message_content: bool = False

    @field_validator("mod_role_ids", "shard_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """``SPACEBOT_MOD_ROLE_IDS=1,2`` or ``"1 2"``: ids separated by commas or spaces."""
        if isinstance(value, str):
            return [int(part) for part in value.replace(",", " ").split()]
        return value
