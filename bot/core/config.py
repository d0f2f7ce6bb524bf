"""Settings, read from the environment and `.env` (prefix ``SPACEBOT_``, except ``DISCORD_TOKEN``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"


def _parse_id_list(value: object) -> object:
    if isinstance(value, str):
        return [int(part) for part in value.replace(",", " ").split()]
    return value


class Settings(BaseSettings):
    """Every setting of the bot and the engine. The README's table lists them all."""

    model_config = SettingsConfigDict(
        env_prefix="SPACEBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    knowledge_dir: Path = Path("knowledge")
    index_dir: Path = Path("index")
    embedding_model: str = DEFAULT_MODEL
    encoder: Literal["onnx", "torch"] = "onnx"  # SPACEBOT_ENCODER=torch: plain sentence-transformers
    onnx_quantize: bool = True
    top_k: int = Field(default=5, ge=1, le=20)
    min_score: float | None = None
    cache_size: int = Field(default=512, ge=0)
    batch_wait_ms: float = Field(default=2.0, ge=0)
    max_batch: int = Field(default=64, ge=1)
    log_level: str = "INFO"

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

    @field_validator("mod_role_ids", "shard_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        return _parse_id_list(value)
