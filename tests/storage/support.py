"""Helpers for the storage tests: explicit settings (no `.env`, no environment), a clock tests move."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

from bot.storage import FeedbackVote, StorageSettings


def storage_settings(url: str, **overrides: Any) -> StorageSettings:
    """Settings for ``url`` with every other value explicit, so the machine's SPACEBOT_* variables don't leak in."""
    values: dict[str, Any] = {
        "database_url": url, "retention_days": 90, "hash_secret": None, "database_timeout": 5.0,
        "gap_confidence": 0.6,
    }
    values.update(overrides)
    return StorageSettings(_env_file=None, **values)  # type: ignore[call-arg]


class FakeClock:
    """``storage``'s clock: returns ``now``, which a test moves with ``advance``."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def vote(message_id: int = 1001, user_id: int = 42, kind: str = "wrong", **overrides: Any) -> FeedbackVote:
    values: dict[str, Any] = {
        "message_id": message_id, "user_id": user_id, "vote": kind,
        "question": "When is Russia leaving the ISS?", "lead_passage_id": "russia-iss-2026-03-deorbit",
        "passage_ids": ("russia-iss-2026-03-deorbit", "russia-iss-2025-07-bakanov"), "kb_version": "kb-1",
        "guild_id": 7, "channel_id": 70, "message_link": f"https://discord.com/channels/7/70/{message_id}",
    }
    values.update(overrides)
    return FeedbackVote(**values)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
