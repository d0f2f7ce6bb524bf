"""Grouping unanswered questions (no database): same words merge, paraphrases group, the medoid leads."""

from __future__ import annotations

import datetime as dt

import numpy as np

from bot.storage.grouping import GapSample, group_gaps, vector_from_bytes, vector_to_bytes

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def sample(question: str, vector: list[float] | None, minutes: int = 0, topics: tuple[str, ...] = ()) -> GapSample:
    array = None if vector is None else np.asarray(vector, dtype=np.float32)
    return GapSample(question, T0 + dt.timedelta(minutes=minutes), array, topics)


def unit_at(degrees: float) -> list[float]:
    """A 2-d unit vector: the cosine of two of them is the cosine of the angle between them."""
    radians = np.radians(degrees)
    return [float(np.cos(radians)), float(np.sin(radians))]


def test_the_same_words_asked_again_are_one_question_even_without_vectors() -> None:
    groups = group_gaps([sample("How much did JWST cost?", None, 0), sample("how much did JWST cost", None, 5),
                         sample("Who leads ESA?", None, 9)])
    assert [(g.question, g.count) for g in groups] == [("How much did JWST cost?", 2), ("Who leads ESA?", 1)]
    assert (groups[0].first_seen, groups[0].last_seen) == (T0, T0 + dt.timedelta(minutes=5))
    assert groups[0].examples == ()  # one wording: no other example to show


def test_the_cosine_threshold_decides_what_is_similar() -> None:
    samples = [sample("first", unit_at(0)), sample("second", unit_at(45))]  # cosine 0.707
    assert [g.count for g in group_gaps(samples, threshold=0.75)] == [1, 1]
    assert [g.count for g in group_gaps(samples, threshold=0.6)] == [2]


def test_the_medoid_is_the_wording_closest_to_all_the_others() -> None:
    samples = [sample("edge one", unit_at(0)), sample("middle", unit_at(20)), sample("edge two", unit_at(40))]
    (group,) = group_gaps(samples, threshold=0.7)
    assert group.question == "middle" and set(group.examples) == {"edge one", "edge two"}


def test_a_wording_asked_often_counts_as_often_for_the_medoid() -> None:
    once_each = [sample("asked a lot", unit_at(0)), sample("near", unit_at(30), 10), sample("far", unit_at(40), 11)]
    assert group_gaps(once_each, threshold=0.7)[0].question == "near"  # asked once each: the central one
    samples = once_each + [sample("Asked a lot!", unit_at(0), n) for n in (1, 2)]
    (group,) = group_gaps(samples, threshold=0.7)
    assert (group.question, group.count, group.examples) == ("asked a lot", 5, ("near", "far"))


def test_groups_come_largest_first_then_most_recent() -> None:
    samples = [sample("old single", unit_at(0), 0), sample("pair", unit_at(90), 1), sample("pair!", unit_at(90), 2),
               sample("new single", unit_at(180), 3)]
    assert [g.question for g in group_gaps(samples)] == ["pair", "new single", "old single"]
    assert [g.question for g in group_gaps(samples, limit=1)] == ["pair"]


def test_a_group_shows_its_most_common_nearest_topics() -> None:
    samples = [sample("a", unit_at(0), 0, ("Budget", "Science")), sample("b", unit_at(5), 1, ("Budget",)),
               sample("c", unit_at(10), 2, ("Launchers",))]
    (group,) = group_gaps(samples)
    assert group.topics[0] == "Budget" and set(group.topics) == {"Budget", "Science", "Launchers"}


def test_vectors_of_another_size_are_grouped_by_their_words_only() -> None:
    samples = [sample("a", unit_at(0), 0), sample("b", unit_at(1), 1), sample("from an older model", [1, 0, 0], 2)]
    groups = group_gaps(samples)
    assert sorted((g.question, g.count) for g in groups) == [("a", 2), ("from an older model", 1)]


def test_vectors_survive_the_trip_through_bytes_exactly() -> None:
    vector = np.array([0.1, -2.5, 3.25e-8, 1e30], dtype=np.float32)
    data = vector_to_bytes(vector)
    assert len(data) == 16 and data[:4] == np.float32(0.1).astype("<f4").tobytes()
    assert np.array_equal(vector_from_bytes(data), vector)
    assert vector_from_bytes(None) is None and vector_from_bytes(b"") is None
