"""Storage settings, read from the environment and `.env` (prefix ``SPACEBOT_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/spacebot.db"
# The async driver of each supported backend: a URL that names none gets it ("postgresql://..." works).
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


class StorageSettings(BaseSettings):
    """Where the bot keeps feedback, gaps, counters and per-server settings, and for how long."""

    model_config = SettingsConfigDict(
        env_prefix="SPACEBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        hide_input_in_errors=True,  # a URL may carry a password, and the hash secret is a secret
    )

    # sqlite+aiosqlite:///path/to/file.db (the folder is created on first use) or postgresql+asyncpg://...
    database_url: str = DEFAULT_DATABASE_URL
    # Question texts (gaps, feedback) older than this many days are deleted; the counts stay.
    retention_days: int = Field(default=90, ge=1)
    # The key of the HMAC that turns a Discord user id into a reporter hash. Unset: one is generated on
    # first use and kept in the database's settings table.
    hash_secret: SecretStr | None = None
    # Seconds one database operation may take before it counts as failed (the database is never awaited
    # on the answer path; this bounds a button click and the background writer).
    database_timeout: float = Field(default=5.0, gt=0)
    # Answered questions whose confidence is below this are recorded as gaps ("low confidence").
    gap_confidence: float = Field(default=0.6, ge=0, le=1)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith("postgres://"):  # the scheme some hosting providers print
            value = "postgresql://" + value.removeprefix("postgres://")
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (sqlite+aiosqlite:///path.db or postgresql+asyncpg://...)") from None
        backend, _, driver = url.drivername.partition("+")
        if backend not in ASYNC_DRIVERS:
            raise ValueError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")
        if driver not in ("", ASYNC_DRIVERS[backend]):
            raise ValueError(f"use the {ASYNC_DRIVERS[backend]} driver ({backend}+{ASYNC_DRIVERS[backend]}://...)")
        return url.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}").render_as_string(hide_password=False)
