"""Persistent state: feedback reports, the gap queue, question counters, per-server settings, heartbeats.

Engine side: nothing here imports discord, and nothing on the answer path waits on it. SQLite by
default (``SPACEBOT_DATABASE_URL``), PostgreSQL for several processes; Alembic migrations in
``migrations/`` run on start. See :class:`Storage` for the API and :class:`WriteQueue` for writes
that must not be awaited.
"""

from bot.storage.config import StorageSettings
from bot.storage.errors import FeedbackNotFoundError, StorageError, StorageUnavailableError
from bot.storage.guild_cache import GuildSettingsCache
from bot.storage.queue import QueueStats, WriteQueue
from bot.storage.recorder import AnswerRecorder
from bot.storage.records import (
    REPORT_KINDS,
    VOTE_KINDS,
    FeedbackReport,
    FeedbackVote,
    GapGroup,
    GuildSettings,
    Heartbeat,
    PurgeReport,
    Stats,
    VoteResult,
)
from bot.storage.storage import Storage

__all__ = [
    "REPORT_KINDS",
    "VOTE_KINDS",
    "AnswerRecorder",
    "FeedbackNotFoundError",
    "FeedbackReport",
    "FeedbackVote",
    "GapGroup",
    "GuildSettings",
    "GuildSettingsCache",
    "Heartbeat",
    "PurgeReport",
    "QueueStats",
    "Stats",
    "Storage",
    "StorageError",
    "StorageSettings",
    "StorageUnavailableError",
    "VoteResult",
    "WriteQueue",
]
