"""Engine settings, read from the environment and `.env` (prefix ``SPACEBOT_``).

The Discord shell's settings extend these: :class:`bot.discord_bot.config.DiscordSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"


class EngineSettings(BaseSettings):
    """Everything the answer engine needs, whichever shell runs it. The README's table lists them."""

    # env_ignore_empty: `SPACEBOT_DEV_GUILD_ID=` (as in .env.example) means the default, not "".
    model_config = SettingsConfigDict(
        env_prefix="SPACEBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    knowledge_dir: Path = Path("knowledge")
    index_dir: Path = Path("index")
    embedding_model: str = DEFAULT_MODEL
    encoder: Literal["onnx", "torch"] = "onnx"  # SPACEBOT_ENCODER=torch: plain sentence-transformers
    onnx_quantize: bool = True
    top_k: int = Field(default=5, ge=1, le=20)
    # The fitted judge (answerability, scope, premise thresholds); default: the one shipped in the package.
    judge_model: Path | None = None
    cache_size: int = Field(default=512, ge=0)
    batch_wait_ms: float = Field(default=2.0, ge=0)
    max_batch: int = Field(default=64, ge=1)
    log_level: str = "INFO"


def describe_settings_error(exc: ValueError) -> str:
    """pydantic's report as one line without the values (a database URL may hold a password):
    'top_k: Input should be a valid integer; ...'."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0]
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in errors())
