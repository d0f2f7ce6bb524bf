"""What the shells record after answering: a count per question, a gap per question it could not answer."""

from __future__ import annotations

import datetime as dt
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from bot.core.models import Answer, Passage, RankedPassage, Source
from bot.storage import AnswerRecorder, Storage, StorageUnavailableError, WriteQueue
from bot.storage.recorder import gap_reason, vectorize_with
from bot.storage.records import NewGap
from tests.storage.support import FakeClock, closed_port, storage_settings

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def passage(topic: str = "russia-iss", passage_id: str = "russia-iss-2026-03-deorbit") -> Passage:
    return Passage(
        id=passage_id, title="Roscosmos on the ISS", text="Roscosmos plans to leave the ISS by 2028.",
        date=dt.date(2026, 3, 1), source=Source("TASS", "Roscosmos on the ISS", "https://example.org/a"),
        topic=topic, file=Path("knowledge/russia-iss.yaml"),
    )


def answered(question: str = "When is Russia leaving the ISS?", confidence: float = 0.9) -> Answer:
    ranked = (RankedPassage(passage(), 1.0, 0.8), RankedPassage(passage("iss-deorbit", "iss-deorbit-1"), 0.5, 0.6))
    return Answer(question=question, answered=True, lead="Roscosmos plans to leave by 2028.", passages=ranked,
                  history=(), suggestions=(), kb_version="kb-1", confidence=confidence)


def declined(reason: str, question: str = "How much did JWST cost?") -> Answer:
    return Answer(question=question, answered=False, lead="", passages=(), history=(),
                  suggestions=("NASA budget", "Space science"), kb_version="kb-1",
                  decline_reason=reason, message="...", confidence=0.1)  # type: ignore[arg-type]


async def vectorize(question: str) -> np.ndarray:
    """A fixed random direction per question: different questions are far apart, like unrelated ones."""
    return np.random.default_rng(zlib.crc32(question.encode())).standard_normal(16).astype(np.float32)


def test_only_not_covered_declines_and_low_confidence_answers_are_gaps() -> None:
    assert gap_reason(declined("not_covered"), 0.6) == "not_covered"
    assert gap_reason(answered(confidence=0.55), 0.6) == "low_confidence"
    assert gap_reason(answered(confidence=0.6), 0.6) is None
    for reason in ("out_of_scope", "not_a_question", "not_understood"):
        assert gap_reason(declined(reason), 0.6) is None


async def test_every_answer_is_counted_and_each_gap_stored_in_the_background(
    storage: Storage, clock: FakeClock
) -> None:
    queue = WriteQueue(backoff=0.001)
    titles = {"russia-iss": "Russia and the ISS", "iss-deorbit": "ISS deorbit"}
    recorder = AnswerRecorder(storage, queue, vectorize=vectorize, topic_title=titles.__getitem__)
    recorder.observe(answered(), 7)
    recorder.observe(answered("Is Russia quitting the station?", confidence=0.52), 7)
    recorder.observe(declined("not_covered"), 7)
    recorder.observe(declined("out_of_scope", "Who won the World Cup?"), 7)
    recorder.observe(declined("not_a_question", "thanks!"), None)
    assert await queue.drain(within=30)
    assert queue.stats.failed == 0

    stats = await storage.stats(LONG_AGO)
    assert (stats.questions, stats.answered) == (5, 2)
    assert stats.declined == {"not_a_question": 1, "not_covered": 1, "out_of_scope": 1}
    assert stats.top_topics == (("russia-iss", 2),)
    groups = {g.question: g for g in await storage.gap_groups(LONG_AGO)}
    assert set(groups) == {"How much did JWST cost?", "Is Russia quitting the station?"}
    assert groups["How much did JWST cost?"].topics == ("NASA budget", "Space science")
    assert groups["Is Russia quitting the station?"].topics == ("Russia and the ISS", "ISS deorbit")
    assert groups["Is Russia quitting the station?"].reasons == {"low_confidence": 1}
    await queue.close(grace=1)


async def test_a_failing_encoder_still_records_the_gap_without_a_vector(storage: Storage) -> None:
    async def broken_encoder(question: str) -> np.ndarray:
        raise RuntimeError("encoder unavailable")

    queue = WriteQueue(backoff=0.001)
    AnswerRecorder(storage, queue, vectorize=broken_encoder, coalesce=0).observe(declined("not_covered"), 7)
    assert await queue.drain(within=30)
    assert [g.question for g in await storage.gap_groups(LONG_AGO)] == ["How much did JWST cost?"]
    await queue.close(grace=1)


async def test_observing_answers_with_the_database_down_never_raises_nor_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage = Storage(storage_settings(f"postgresql+asyncpg://spacebot@127.0.0.1:{closed_port()}/spacebot"))
    queue = WriteQueue(attempts=2, backoff=0.001)
    recorder = AnswerRecorder(storage, queue, vectorize=vectorize)
    for _ in range(50):  # a plain function: it cannot await the database, and it must not raise
        recorder.observe(declined("not_covered"), 7)
        recorder.observe(answered(), 7)
    assert queue.stats.submitted == 1  # the 100 answers, 50 gaps among them, in one write
    assert await queue.drain(within=120)
    assert queue.stats.failed == 1 and queue.stats.written == 0
    assert "not recorded" in caplog.text
    await queue.close(grace=1)
    await storage.close()


async def test_counts_observed_before_the_writer_runs_go_in_one_write(storage: Storage) -> None:
    queue = WriteQueue(backoff=0.001)
    recorder = AnswerRecorder(storage, queue)
    for _ in range(30):  # a burst: the writer gets no turn until it ends
        recorder.observe(answered(), 7)
    for _ in range(10):
        recorder.observe(declined("out_of_scope", "Who won the World Cup?"), 7)
    assert await queue.drain(within=30)
    recorder.observe(answered(), None)  # after the write: the next one
    assert await queue.drain(within=30)

    stats = await storage.stats(LONG_AGO)
    assert (queue.stats.submitted, queue.stats.written) == (2, 2)
    assert (stats.questions, stats.answered, stats.declined) == (41, 31, {"out_of_scope": 10})
    await queue.close(grace=1)


class RecordsFailingOnce:
    """Stands in for Storage: the first transaction fails, as a database dropping out would."""

    def __init__(self) -> None:
        self.batches: list[tuple[dict[object, int], list[str]]] = []
        self.failed = False

    async def record_answers(self, counts: dict[object, int], new_gaps: list[NewGap]) -> None:
        if not self.failed:
            self.failed = True
            raise StorageUnavailableError("the database went away")
        self.batches.append((dict(counts), [gap.question for gap in new_gaps]))


async def test_a_retried_write_stores_the_same_batch_once_with_its_vectors_computed_once() -> None:
    storage = RecordsFailingOnce()
    encoded: list[str] = []

    async def counting_vectorize(question: str) -> np.ndarray:
        encoded.append(question)
        return await vectorize(question)

    queue = WriteQueue(attempts=2, backoff=0.001)
    recorder = AnswerRecorder(storage, queue, low_confidence=0.6, vectorize=counting_vectorize)  # type: ignore[arg-type]
    for _ in range(3):
        recorder.observe(answered(), 7)
    recorder.observe(declined("not_covered"), 7)
    recorder.observe(declined("out_of_scope", "Who won the World Cup?"), 7)
    assert await queue.drain(within=30)

    assert storage.batches == [(
        {("answered", 7, "russia-iss"): 3, ("not_covered", 7, None): 1, ("out_of_scope", 7, None): 1},
        ["How much did JWST cost?"],
    )]
    assert encoded == ["How much did JWST cost?"]
    assert (queue.stats.retried, queue.stats.written, queue.stats.failed) == (1, 1, 0)
    await queue.close(grace=1)


class RecordingEngine:
    """An engine's ``question_vector`` that notes the thread it ran on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def question_vector(self, question: str) -> np.ndarray:
        self.threads.append(threading.get_ident())
        return np.full(4, len(question), dtype=np.float32)


async def test_the_shells_vectorize_asks_the_current_engine_off_the_loop_and_gives_none_without_one() -> None:
    engine = RecordingEngine()
    current: list[RecordingEngine | None] = [None]
    vectorize = vectorize_with(lambda: current[0])

    assert await vectorize("why?") is None
    current[0] = engine
    vector = await vectorize("why?")

    np.testing.assert_array_equal(vector, np.full(4, 4, dtype=np.float32))  # type: ignore[arg-type]
    assert engine.threads and engine.threads[0] != threading.get_ident()
