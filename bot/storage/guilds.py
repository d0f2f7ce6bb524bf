"""Per-server settings, process heartbeats, and the installation's own settings (the hash secret)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.records import GuildSettings, Heartbeat
from bot.storage.schema import GuildSettingsRow, HeartbeatRow, SettingRow

HASH_SECRET_KEY = "hash_secret"
_LIST_FIELDS = ("mention_channel_ids", "moderator_role_ids")


def _to_settings(row: GuildSettingsRow) -> GuildSettings:
    return GuildSettings(
        guild_id=row.guild_id, answer_mentions=row.answer_mentions,  # type: ignore[arg-type]
        mention_channel_ids=tuple(row.mention_channel_ids or ()), ephemeral_default=row.ephemeral_default,
        moderator_role_ids=tuple(row.moderator_role_ids or ()), feedback_buttons=row.feedback_buttons,
        log_channel_id=row.log_channel_id, answer_every_thread_message=row.answer_every_thread_message,
    )


def with_changes(settings: GuildSettings, changes: dict[str, Any]) -> GuildSettings:
    """``settings`` with some fields changed (lists become tuples); the guild id cannot change."""
    if "guild_id" in changes:
        raise ValueError("guild_id cannot be changed")
    normalised = {name: tuple(value) if name in _LIST_FIELDS else value for name, value in changes.items()}
    return dataclasses.replace(settings, **normalised)


async def get_settings(session: AsyncSession, guild_id: int) -> GuildSettings:
    row = await session.get(GuildSettingsRow, guild_id)
    return _to_settings(row) if row else GuildSettings(guild_id=guild_id)


async def all_settings(session: AsyncSession) -> list[GuildSettings]:
    rows = await session.scalars(select(GuildSettingsRow).order_by(GuildSettingsRow.guild_id))
    return [_to_settings(row) for row in rows]


async def put_settings(session: AsyncSession, settings: GuildSettings, now: dt.datetime) -> GuildSettings:
    row = await session.get(GuildSettingsRow, settings.guild_id)
    if row is None:
        row = GuildSettingsRow(guild_id=settings.guild_id)
        session.add(row)
    values = dataclasses.asdict(settings)
    for list_field in _LIST_FIELDS:
        values[list_field] = list(values[list_field])
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = now
    await session.flush()
    return _to_settings(row)


async def beat(
    session: AsyncSession, process_id: str, *, host: str, shard_ids: Sequence[int], kb_version: str | None,
    now: dt.datetime,
) -> Heartbeat:
    row = await session.get(HeartbeatRow, process_id)
    if row is None:
        row = HeartbeatRow(process_id=process_id, started_at=now)
        session.add(row)
    row.host, row.shard_ids, row.kb_version, row.last_seen = host, list(shard_ids), kb_version, now
    await session.flush()
    return _to_heartbeat(row)


def _to_heartbeat(row: HeartbeatRow) -> Heartbeat:
    return Heartbeat(process_id=row.process_id, host=row.host, shard_ids=tuple(row.shard_ids or ()),
                     kb_version=row.kb_version, started_at=row.started_at, last_seen=row.last_seen)


async def all_heartbeats(session: AsyncSession) -> list[Heartbeat]:
    rows = await session.scalars(select(HeartbeatRow).order_by(HeartbeatRow.process_id))
    return [_to_heartbeat(row) for row in rows]


async def remove_heartbeats(session: AsyncSession, process_id: str | None, older_than: dt.datetime | None) -> int:
    query = delete(HeartbeatRow)
    if process_id is not None:
        query = query.where(HeartbeatRow.process_id == process_id)
    if older_than is not None:
        query = query.where(HeartbeatRow.last_seen < older_than)
    result = await session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def stored_secret(session: AsyncSession, generated: str) -> str:
    """The secret kept in the settings table; ``generated`` is stored first when there is none."""
    row = await session.get(SettingRow, HASH_SECRET_KEY)
    if row is None:
        row = SettingRow(key=HASH_SECRET_KEY, value=generated)
        session.add(row)
        await session.flush()  # a concurrent first start inserts too: one fails here, retries, and reads it
    return row.value
