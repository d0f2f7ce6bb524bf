"""Feedback reports on both backends: one vote per reporter per answer, the review queue, resolving."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.storage import FeedbackNotFoundError, Storage
from bot.storage.schema import FeedbackRow
from tests.storage.support import FakeClock, vote


async def test_a_vote_is_stored_with_everything_a_moderator_needs(storage: Storage, clock: FakeClock) -> None:
    result = await storage.record_feedback(vote(kind="outdated", note="Roscosmos changed the date"))
    report = result.report
    assert result.previous_vote is None and result.is_new_report
    assert (report.vote, report.status, report.note) == ("outdated", "open", "Roscosmos changed the date")
    assert report.question == "When is Russia leaving the ISS?"
    assert report.lead_passage_id == "russia-iss-2026-03-deorbit"
    assert report.passage_ids == ("russia-iss-2026-03-deorbit", "russia-iss-2025-07-bakanov")
    assert (report.kb_version, report.guild_id, report.channel_id) == ("kb-1", 7, 70)
    assert report.message_link == "https://discord.com/channels/7/70/1001"
    assert report.created_at == clock.now
    assert await storage.get_feedback(report.id) == report


async def test_the_reporter_is_stored_as_an_hmac_never_as_the_raw_id(storage: Storage) -> None:
    user_id = 123456789012345678
    await storage.record_feedback(vote(user_id=user_id))
    async with storage._sessions() as session:
        stored = (await session.scalars(select(FeedbackRow))).one()
    assert stored.reporter_hash == await storage.reporter_hash(user_id)
    assert len(stored.reporter_hash or "") == 64 and str(user_id) not in (stored.reporter_hash or "")
    assert await storage.reporter_hash(user_id) != await storage.reporter_hash(user_id + 1)


async def test_a_new_vote_by_the_same_reporter_replaces_the_old_one(storage: Storage) -> None:
    first = await storage.record_feedback(vote(kind="wrong", note="bad date"))
    second = await storage.record_feedback(vote(kind="helpful"))
    assert second.report.id == first.report.id
    assert second.previous_vote == "wrong" and second.report.vote == "helpful"
    assert second.report.note is None and not second.is_new_report
    assert await storage.count_feedback(status=None, kinds=("helpful", "wrong", "outdated", "bad_source")) == 1


async def test_other_reporters_and_other_messages_get_their_own_votes(storage: Storage) -> None:
    await storage.record_feedback(vote(user_id=1))
    await storage.record_feedback(vote(user_id=2))
    await storage.record_feedback(vote(user_id=1, message_id=2002))
    assert await storage.count_feedback() == 3


async def test_the_same_vote_again_does_not_reopen_a_dismissed_report(storage: Storage) -> None:
    report = (await storage.record_feedback(vote(kind="wrong"))).report
    await storage.resolve_feedback(report.id, "dismissed", note="the answer is right")
    again = await storage.record_feedback(vote(kind="wrong", note="still wrong"))
    assert again.report.status == "dismissed" and again.report.note == "still wrong"
    assert not again.is_new_report


async def test_a_changed_vote_is_a_new_open_report(storage: Storage, clock: FakeClock) -> None:
    report = (await storage.record_feedback(vote(kind="wrong"))).report
    await storage.resolve_feedback(report.id, "resolved", fixed_in="kb-2")
    clock.advance(hours=1)
    changed = await storage.record_feedback(vote(kind="bad_source"))
    assert changed.is_new_report and changed.previous_vote == "wrong"
    assert (changed.report.status, changed.report.fixed_in, changed.report.resolved_at) == ("open", None, None)
    assert changed.report.created_at == clock.now


async def test_concurrent_clicks_by_one_reporter_leave_exactly_one_vote(storage: Storage) -> None:
    kinds = ["wrong", "outdated", "bad_source", "helpful"] * 4
    await asyncio.gather(*(storage.record_feedback(vote(kind=kind)) for kind in kinds))
    all_kinds = ("helpful", "wrong", "outdated", "bad_source")
    assert await storage.count_feedback(status=None, kinds=all_kinds) == 1


async def test_the_review_queue_lists_open_reports_newest_first_with_pages(
    storage: Storage, clock: FakeClock
) -> None:
    for user in range(5):
        await storage.record_feedback(vote(user_id=user, message_id=100 + user))
        clock.advance(minutes=1)
    await storage.record_feedback(vote(user_id=99, kind="helpful"))
    first_page = await storage.list_feedback("open", limit=2)
    second_page = await storage.list_feedback("open", limit=2, offset=2)
    assert [r.message_id for r in first_page] == [104, 103]
    assert [r.message_id for r in second_page] == [102, 101]
    assert await storage.count_feedback("open") == 5  # the helpful vote is not a report
    assert len(await storage.list_feedback("open", kinds=("helpful",))) == 1


async def test_the_review_queue_can_be_limited_to_one_server(storage: Storage) -> None:
    await storage.record_feedback(vote(user_id=1, guild_id=7))
    await storage.record_feedback(vote(user_id=2, guild_id=8))
    assert [r.guild_id for r in await storage.list_feedback(guild_id=8)] == [8]
    assert await storage.count_feedback(guild_id=7) == 1


async def test_resolving_records_the_fix_version_the_note_and_the_time(storage: Storage, clock: FakeClock) -> None:
    report = (await storage.record_feedback(vote())).report
    clock.advance(days=2)
    resolved = await storage.resolve_feedback(report.id, "resolved", note="passage updated", fixed_in="kb-2")
    assert (resolved.status, resolved.resolution_note, resolved.fixed_in) == ("resolved", "passage updated", "kb-2")
    assert resolved.resolved_at == clock.now
    assert await storage.count_feedback("open") == 0
    assert [r.id for r in await storage.list_feedback("resolved")] == [report.id]


async def test_dismissing_keeps_no_fix_version_and_reopening_clears_the_time(storage: Storage) -> None:
    report = (await storage.record_feedback(vote())).report
    dismissed = await storage.resolve_feedback(report.id, "dismissed", fixed_in="kb-2")
    assert dismissed.fixed_in is None and dismissed.resolved_at is not None
    reopened = await storage.resolve_feedback(report.id, "open")
    assert reopened.status == "open" and reopened.resolved_at is None


async def test_resolving_an_unknown_report_says_which(storage: Storage) -> None:
    with pytest.raises(FeedbackNotFoundError, match="#4242"):
        await storage.resolve_feedback(4242)


async def test_a_bad_status_or_vote_kind_is_refused(storage: Storage) -> None:
    report = (await storage.record_feedback(vote())).report
    with pytest.raises(ValueError, match="status must be one of"):
        await storage.resolve_feedback(report.id, "closed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vote must be one of"):
        vote(kind="meh")
