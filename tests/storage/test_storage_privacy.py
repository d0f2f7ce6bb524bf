"""Privacy on both backends: forgetting a user, retention, and the per-installation hash secret."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pytest
from sqlalchemy import select

from bot.storage import Storage
from bot.storage.guilds import HASH_SECRET_KEY
from bot.storage.schema import FeedbackRow, GapRow, SettingRow
from tests.storage.support import FakeClock, storage_settings, vote


async def test_forgetting_a_user_deletes_all_their_reports_and_only_theirs(storage: Storage) -> None:
    await storage.record_feedback(vote(user_id=42, message_id=1))
    await storage.record_feedback(vote(user_id=42, message_id=2, kind="helpful"))
    await storage.record_feedback(vote(user_id=7, message_id=1))
    assert await storage.count_user_reports(42) == 2
    assert await storage.forget_user(42) == 2
    assert await storage.count_user_reports(42) == 0
    remaining = await storage.list_feedback(status=None, kinds=("helpful", "wrong", "outdated", "bad_source"))
    assert [r.message_id for r in remaining] == [1] and await storage.count_user_reports(7) == 1
    assert await storage.forget_user(42) == 0


async def test_retention_deletes_old_question_texts_and_keeps_every_count(storage: Storage, clock: FakeClock) -> None:
    await storage.record_gap("An old unanswered question?", "not_covered", guild_id=7, vector=np.ones(4))
    await storage.record_feedback(vote(user_id=42, note="old note"))
    await storage.count_question("not_covered", 7)
    clock.advance(days=100)
    await storage.record_gap("A recent unanswered question?", "not_covered", guild_id=7, vector=np.ones(4))
    since = clock.now - dt.timedelta(days=365)
    before = await storage.stats(since)

    report = await storage.purge_older_than()  # SPACEBOT_RETENTION_DAYS = 90 in these settings

    assert (report.gaps_purged, report.reports_anonymised) == (1, 1)
    assert await storage.stats(since) == before
    async with storage._sessions() as session:
        gaps = {row.id: row for row in await session.scalars(select(GapRow).order_by(GapRow.id))}
        feedback = (await session.scalars(select(FeedbackRow))).one()
    old, recent = gaps.values()
    assert (old.question, old.vector, old.purged) == (None, None, True)
    assert recent.question == "A recent unanswered question?" and recent.vector is not None
    assert (feedback.question, feedback.note, feedback.reporter_hash) == (None, None, None)
    assert feedback.lead_passage_id == "russia-iss-2026-03-deorbit" and feedback.vote == "wrong"
    groups = await storage.gap_groups(since)
    assert [g.question for g in groups] == ["A recent unanswered question?"]
    assert (await storage.purge_older_than()).gaps_purged == 0  # nothing twice


async def test_the_hash_secret_is_generated_once_and_kept_in_the_database(database_url: str) -> None:
    async with Storage(storage_settings(database_url)) as first:
        hashed = await first.reporter_hash(42)
        async with first._sessions() as session:
            stored = await session.get(SettingRow, HASH_SECRET_KEY)
    async with Storage(storage_settings(database_url)) as reopened:
        assert await reopened.reporter_hash(42) == hashed
    assert stored is not None and len(stored.value) == 64


async def test_a_configured_hash_secret_wins_over_the_stored_one(database_url: str) -> None:
    async with Storage(storage_settings(database_url)) as generated:
        generated_hash = await generated.reporter_hash(42)
    async with Storage(storage_settings(database_url, hash_secret="from-the-environment")) as configured:
        assert await configured.reporter_hash(42) != generated_hash
    async with Storage(storage_settings(database_url, hash_secret="from-the-environment")) as again:
        assert await again.reporter_hash(42) == await configured.reporter_hash(42)


async def test_the_hash_secret_never_reaches_the_log(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with Storage(storage_settings(database_url)) as storage:
        await storage.record_feedback(vote())
        async with storage._sessions() as session:
            secret = (await session.get(SettingRow, HASH_SECRET_KEY)).value  # type: ignore[union-attr]
    assert caplog.records  # the storage did log (the migration at least), just not the secret
    assert secret not in caplog.text
    configured = storage_settings(database_url, hash_secret="do-not-print-me")
    assert "do-not-print-me" not in repr(configured) and "do-not-print-me" not in str(configured)
