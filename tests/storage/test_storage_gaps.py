"""The gap queue, the question counters and the stats, on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt

import numpy as np
import pytest
from sqlalchemy import select

from bot.storage import Storage
from bot.storage.grouping import vector_from_bytes
from bot.storage.schema import GapRow
from tests.storage.support import FakeClock, vote


def direction(axis: int, wobble: float = 0.0, dimension: int = 8) -> np.ndarray:
    """A unit-ish vector near one axis: questions near the same axis are paraphrases."""
    vector = np.zeros(dimension, dtype=np.float32)
    vector[axis] = 1.0
    vector[(axis + 1) % dimension] = wobble
    return vector


async def test_a_gap_keeps_its_question_time_server_topics_and_vector(storage: Storage, clock: FakeClock) -> None:
    vector = np.array([0.25, -1.5, 3.0, 1e-7], dtype=np.float32)
    gap_id = await storage.record_gap(
        "How much did JWST cost?", "not_covered", guild_id=7, topics=("NASA budget", "Space science"),
        vector=vector, confidence=0.12,
    )
    async with storage._sessions() as session:
        row = (await session.scalars(select(GapRow).where(GapRow.id == gap_id))).one()
    assert (row.question, row.reason, row.guild_id, row.purged) == ("How much did JWST cost?", "not_covered", 7, False)
    assert row.topics == ["NASA budget", "Space science"] and row.created_at == clock.now
    assert row.confidence == pytest.approx(0.12)
    stored = vector_from_bytes(row.vector)
    assert stored is not None and stored.dtype == np.float32
    assert np.array_equal(stored, vector)


async def test_similar_questions_form_one_group_shown_by_its_most_typical_wording(
    storage: Storage, clock: FakeClock
) -> None:
    asked = [
        ("How much did the James Webb telescope cost?", direction(0, 0.30)),
        ("What was the cost of JWST?", direction(0, 0.10)),
        ("JWST price?", direction(0, -0.30)),
        ("Who runs the Chinese space agency?", direction(3, 0.0)),
    ]
    start = clock.now
    for question, vector in asked:
        await storage.record_gap(question, "not_covered", guild_id=7, topics=("Space science",), vector=vector)
        clock.advance(hours=1)
    groups = await storage.gap_groups(start - dt.timedelta(days=1))
    assert [g.count for g in groups] == [3, 1]
    jwst = groups[0]
    assert jwst.question == "What was the cost of JWST?"  # the medoid: closest to both other wordings
    assert set(jwst.examples) == {"How much did the James Webb telescope cost?", "JWST price?"}
    assert (jwst.first_seen, jwst.last_seen) == (start, start + dt.timedelta(hours=2))
    assert jwst.topics == ("Space science",) and jwst.reasons == {"not_covered": 3}
    assert groups[1].question == "Who runs the Chinese space agency?"


async def test_gap_groups_only_count_the_period_and_the_server_asked_for(storage: Storage, clock: FakeClock) -> None:
    await storage.record_gap("An old question about Tiangong?", "not_covered", guild_id=7, vector=direction(1))
    clock.advance(days=40)
    await storage.record_gap("A new question about Tiangong?", "low_confidence", guild_id=7, vector=direction(1))
    await storage.record_gap("Another server's question?", "not_covered", guild_id=8, vector=direction(5))
    recent = await storage.gap_groups(clock.now - dt.timedelta(days=30), guild_id=7)
    assert [(g.question, g.count, g.reasons) for g in recent] == [
        ("A new question about Tiangong?", 1, {"low_confidence": 1})
    ]


async def test_a_gap_reason_outside_the_two_kinds_is_refused(storage: Storage) -> None:
    with pytest.raises(ValueError, match="gap reason"):
        await storage.record_gap("thanks!", "not_a_question")  # type: ignore[arg-type]


async def test_concurrent_counts_of_the_same_outcome_lose_nothing(storage: Storage, clock: FakeClock) -> None:
    await asyncio.gather(*(storage.count_question("out_of_scope", 7) for _ in range(40)))
    stats = await storage.stats(clock.now - dt.timedelta(days=1))
    assert stats.declined == {"out_of_scope": 40} and stats.questions == 40


async def test_stats_count_questions_by_outcome_votes_topics_and_reported_passages(
    storage: Storage, clock: FakeClock
) -> None:
    for outcome, topic, times in [("answered", "russia-iss", 5), ("answered", "artemis-accords", 3),
                                  ("not_covered", None, 2), ("out_of_scope", None, 4), ("not_a_question", None, 1)]:
        await storage.count_question(outcome, 7, topic, n=times)  # type: ignore[arg-type]
    await storage.record_feedback(vote(user_id=1, kind="helpful"))
    await storage.record_feedback(vote(user_id=2, kind="helpful"))
    await storage.record_feedback(vote(user_id=3, kind="wrong"))
    await storage.record_feedback(vote(user_id=4, kind="outdated", message_id=5, lead_passage_id="other-passage"))
    await storage.record_feedback(vote(user_id=5, kind="bad_source", message_id=6))
    await storage.record_gap("How much did JWST cost?", "not_covered", guild_id=7)
    stats = await storage.stats(clock.now - dt.timedelta(days=30))
    assert (stats.questions, stats.answered) == (15, 8)
    assert stats.declined == {"not_a_question": 1, "not_covered": 2, "out_of_scope": 4}
    assert stats.votes == {"bad_source": 1, "helpful": 2, "outdated": 1, "wrong": 1}
    assert stats.helpful_rate == pytest.approx(2 / 5)
    assert (stats.open_reports, stats.gaps) == (3, 1)
    assert stats.top_topics == (("russia-iss", 5), ("artemis-accords", 3))
    assert stats.top_reported_passages == (("russia-iss-2026-03-deorbit", 2), ("other-passage", 1))


async def test_stats_of_one_server_leave_the_others_out(storage: Storage, clock: FakeClock) -> None:
    await storage.count_question("answered", 7, "russia-iss")
    await storage.count_question("answered", 8, "artemis-accords", n=2)
    await storage.record_feedback(vote(guild_id=8, kind="helpful"))
    stats = await storage.stats(clock.now - dt.timedelta(days=1), guild_id=7)
    assert (stats.answered, stats.top_topics, stats.votes, stats.helpful_rate) == (1, (("russia-iss", 1),), {}, None)


async def test_stats_start_at_the_day_asked_for(storage: Storage, clock: FakeClock) -> None:
    await storage.count_question("answered", 7, "russia-iss")
    clock.advance(days=10)
    await storage.count_question("answered", 7, "russia-iss", n=2)
    assert (await storage.stats(clock.now - dt.timedelta(days=3))).answered == 2
    assert (await storage.stats(clock.now - dt.timedelta(days=30))).answered == 3
