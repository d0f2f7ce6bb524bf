"""The database under load, measured in one process (issue 11, "Tests and figures").

* **Recording overhead.** The same questions answered the way the Discord shell answers them
  (``answer_async``, then ``AnswerRecorder.observe``, which queues the outcome count and any gap on the
  ``WriteQueue``), with a recorder attached and without, taking turns; the writes run in the
  background while the next questions are timed. p50/p95 of both and their ratio.
* **Feedback writes under load.** Feedback votes stored the way a button click stores them (one
  awaited ``record_feedback`` each), issued while a fixed number of questions stay in flight; then
  the stored rows are counted: every write issued must be in the database.

A temporary SQLite database by default; ``SPACEBOT_BENCH_DATABASE_URL`` names another one (a
throwaway PostgreSQL database: the run adds counts and gaps to it, and deletes its feedback rows).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bot.core.engine import Engine
    from bot.storage import AnswerRecorder, FeedbackVote, Storage, WriteQueue

DATABASE_ENV = "SPACEBOT_BENCH_DATABASE_URL"
BENCH_GUILD_ID = 1  # counts and gaps of the bench land on a server id no real server has
WARMUP_QUESTIONS = 3
DRAIN_SECONDS = 120.0
SMALL_OVERHEAD = 0.10  # of the p50 without recording: a measurable difference this small still passes
BOOTSTRAP_RESAMPLES = 2_000
RESULTS_KEY = "storage"


@dataclass(frozen=True)
class StoragePlan:
    runs: int = 2  # passes of the questions per mode (recording off, on), taking turns
    writes: int = 1_000
    concurrency: int = 64  # questions in flight while the writes are issued
    write_concurrency: int = 16  # clicks being stored at once
    record_answers: bool = True  # the questions asked during the writes are recorded too, as in the bot


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: float
    p95: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Percentiles:
        if not samples_ms:
            return cls(0, 0.0, 0.0)
        values = np.asarray(samples_ms, dtype=np.float64)
        return cls(len(values), float(np.percentile(values, 50)), float(np.percentile(values, 95)))


@dataclass(frozen=True)
class PairedDifference:
    """Per question, time with recording minus time without (same question, same run): the median and
    its bootstrap 95% interval, in ms. An interval that contains 0 means no difference beyond noise."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, on_ms: Sequence[float], off_ms: Sequence[float], seed: int = 0) -> PairedDifference:
        differences = np.asarray(on_ms, dtype=np.float64) - np.asarray(off_ms, dtype=np.float64)
        if not len(differences):
            return cls(0.0, 0.0, 0.0)
        picks = np.random.default_rng(seed).integers(0, len(differences), (BOOTSTRAP_RESAMPLES, len(differences)))
        medians = np.median(differences[picks], axis=1)
        low, high = np.percentile(medians, [2.5, 97.5])
        return cls(float(np.median(differences)), float(low), float(high))


@dataclass(frozen=True)
class RecordingOverhead:
    off: Percentiles
    on: Percentiles
    difference: PairedDifference
    writes_queued: int  # by the recorder during the "on" passes
    writes_written: int
    writes_failed: int

    @property
    def p50_ratio(self) -> float:
        return self.on.p50 / self.off.p50 if self.off.p50 else 0.0

    @property
    def p95_ratio(self) -> float:
        return self.on.p95 / self.off.p95 if self.off.p95 else 0.0


@dataclass(frozen=True)
class WriteLoad:
    writes_issued: int
    writes_stored: int  # rows counted in the database afterwards
    writes_raised: int  # record_feedback calls that raised (a click told "not recorded")
    seconds: float  # from the first write issued to the last one stored
    concurrency: int  # questions in flight
    write_concurrency: int  # writes in flight
    questions: Percentiles  # latency of the questions answered while the writes ran
    recorder_queued: int  # outcome counts and gaps of those questions, through the write queue
    recorder_written: int
    recorder_lost: int  # failed after every attempt, or dropped (queue full)
    drain_seconds: float  # for the write queue to catch up once the feedback writes were done

    @property
    def lost(self) -> int:
        return self.writes_issued - self.writes_stored


def measure_storage_load(
    engine: Engine, questions: Sequence[str], plan: StoragePlan = StoragePlan(), *, database_url: str | None = None,
) -> dict[str, Any]:
    """Both measurements on one database (a temporary SQLite file unless ``database_url`` or
    SPACEBOT_BENCH_DATABASE_URL names one); the results as stored in BENCHMARKS.md."""
    if not questions:
        raise ValueError("no questions to ask")
    url = database_url or os.environ.get(DATABASE_ENV) or None
    with _database(url) as chosen:
        return asyncio.run(_measure(engine, list(questions), plan, chosen))


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="spacebot-bench-db-") as folder:
        yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"


async def _measure(engine: Engine, questions: list[str], plan: StoragePlan, url: str) -> dict[str, Any]:
    from bot.storage import Storage, StorageSettings
    from bot.storage.database import is_sqlite, safe_url

    # The bot's own defaults (database timeout included): a write they would lose counts as lost.
    settings = StorageSettings(_env_file=None, database_url=url, hash_secret=secrets.token_hex(16))  # type: ignore[call-arg]
    storage = await Storage.open(settings)
    try:
        overhead = await _recording_overhead(engine, storage, questions, plan.runs)
        load = await _writes_under_load(engine, storage, questions, plan)
    finally:
        await storage.close()
    return {
        "database": "sqlite (temporary file)" if is_sqlite(url) else safe_url(url),
        "overhead": {**asdict(overhead), "p50_ratio": overhead.p50_ratio, "p95_ratio": overhead.p95_ratio},
        "writes": {**asdict(load), "lost": load.lost},
    }


# -- recording on versus off -------------------------------------------------------------------------


def _recorder(engine: Engine, storage: Storage, queue: WriteQueue) -> AnswerRecorder:
    """The recorder as the Discord shell builds it: gaps get the question's vector off the loop, the one
    the answer path computed when the engine still holds it."""
    from bot.storage import AnswerRecorder
    from bot.storage.recorder import vectorize_with

    return AnswerRecorder(storage, queue, vectorize=vectorize_with(lambda: engine))


async def _answer_path(engine: Engine, question: str, recorder: AnswerRecorder | None) -> float:
    """One question as the shell handles it; milliseconds until the answer could be sent."""
    started = time.perf_counter()
    answer = await engine.answer_async(question)
    if recorder is not None:
        recorder.observe(answer, BENCH_GUILD_ID)
    return (time.perf_counter() - started) * 1000


async def _recording_overhead(engine: Engine, storage: Storage, questions: list[str], runs: int) -> RecordingOverhead:
    from bot.storage import WriteQueue

    queue = WriteQueue()
    recorder = _recorder(engine, storage, queue)
    for question in questions[:WARMUP_QUESTIONS]:
        await _answer_path(engine, question, recorder)
    await queue.drain(DRAIN_SECONDS)
    queued_before, written_before, failed_before = (
        queue.stats.submitted, queue.stats.written, queue.stats.failed
    )
    samples: dict[bool, list[float]] = {False: [], True: []}
    for run in range(runs):
        for recording in ((False, True) if run % 2 == 0 else (True, False)):  # alternate which goes first
            for question in questions:
                samples[recording].append(await _answer_path(engine, question, recorder if recording else None))
            await queue.drain(DRAIN_SECONDS)  # untimed: no write spills into the other mode's turn
    await queue.close(DRAIN_SECONDS)
    return RecordingOverhead(
        off=Percentiles.of(samples[False]), on=Percentiles.of(samples[True]),
        difference=PairedDifference.of(samples[True], samples[False]),
        writes_queued=queue.stats.submitted - queued_before, writes_written=queue.stats.written - written_before,
        writes_failed=queue.stats.failed - failed_before,
    )


# -- feedback writes while questions run ---------------------------------------------------------------


def _bench_vote(message_id: int, user_id: int, kind: str) -> FeedbackVote:
    from bot.storage import FeedbackVote

    return FeedbackVote(
        message_id=message_id, user_id=user_id, vote=kind,  # type: ignore[arg-type]
        question="When is Russia leaving the ISS?", lead_passage_id=None, passage_ids=(), kb_version="bench",
        guild_id=BENCH_GUILD_ID, channel_id=BENCH_GUILD_ID,
    )


async def _writes_under_load(engine: Engine, storage: Storage, questions: list[str], plan: StoragePlan) -> WriteLoad:
    from bot.storage import VOTE_KINDS, StorageError, WriteQueue

    user_id = secrets.randbits(62)  # one reporter for every bench vote: counted, then deleted, by it alone
    first_message = secrets.randbits(40) << 20
    queue = WriteQueue()
    recorder = _recorder(engine, storage, queue) if plan.record_answers else None
    writing_done = asyncio.Event()
    latencies: list[float] = []
    raised = 0
    gate = asyncio.Semaphore(plan.write_concurrency)

    async def asker(offset: int) -> None:
        index = offset
        while True:  # at least one question each, then on until the last write is stored
            latencies.append(await _answer_path(engine, questions[index % len(questions)], recorder))
            index += plan.concurrency
            await asyncio.sleep(0)  # a cached answer returns without suspending: let the writes run too
            if writing_done.is_set():
                return

    async def click(n: int) -> None:
        nonlocal raised
        async with gate:
            try:
                await storage.record_feedback(_bench_vote(first_message + n, user_id, VOTE_KINDS[n % len(VOTE_KINDS)]))
            except StorageError:
                raised += 1

    askers = [asyncio.create_task(asker(i)) for i in range(plan.concurrency)]
    await asyncio.sleep(0)  # the questions are in flight before the first write
    started = time.perf_counter()
    try:
        await asyncio.gather(*(click(n) for n in range(plan.writes)))
        seconds = time.perf_counter() - started
    finally:
        writing_done.set()
        await asyncio.gather(*askers)
    drain_started = time.perf_counter()
    await queue.close(DRAIN_SECONDS)
    drain_seconds = time.perf_counter() - drain_started
    stored = await storage.count_user_reports(user_id)
    await storage.forget_user(user_id)  # leave a database named by SPACEBOT_BENCH_DATABASE_URL as it was
    return WriteLoad(writes_issued=plan.writes, writes_stored=stored, writes_raised=raised, seconds=seconds,
                     concurrency=plan.concurrency, write_concurrency=plan.write_concurrency,
                     questions=Percentiles.of(latencies), recorder_queued=queue.stats.submitted,
                     recorder_written=queue.stats.written, recorder_lost=queue.stats.failed + queue.stats.dropped,
                     drain_seconds=drain_seconds)


# -- the report --------------------------------------------------------------------------------------


def within_noise(overhead: dict[str, Any]) -> bool:
    """Recording costs no measurable time (the interval of the paired difference contains 0), or too little
    to matter (its upper end is at most SMALL_OVERHEAD of the p50 without recording)."""
    difference = overhead["difference"]
    return difference["low"] <= 0 or difference["high"] <= SMALL_OVERHEAD * overhead["off"]["p50"]


def storage_targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(name, measured, limit, passed) of the storage targets; passed is None when not measured."""
    found = results.get(RESULTS_KEY)
    overhead_name = "answer latency, feedback recording on vs off (median paired difference, 95% interval)"
    overhead_limit = f"interval contains 0, or ≤ {SMALL_OVERHEAD:.0%} of p50"
    writes_name = "feedback writes while 64 questions run: stored vs issued"
    if not found:
        return [(overhead_name, "-", overhead_limit, None), (writes_name, "-", "no lost write", None)]
    overhead, writes = found["overhead"], found["writes"]
    difference = overhead["difference"]
    writes_name = f"feedback writes while {writes['concurrency']} questions run: stored vs issued"
    return [
        (overhead_name, f"{difference['median']:+.2f} ms [{difference['low']:+.2f}, {difference['high']:+.2f}] "
         f"on a p50 of {overhead['off']['p50']:.2f} ms", overhead_limit, within_noise(overhead)),
        (writes_name, f"{writes['writes_stored']:,} of {writes['writes_issued']:,}", "no lost write",
         writes["lost"] == 0 and writes["writes_raised"] == 0 and writes.get("recorder_lost", 0) == 0),
    ]


def render_storage_section(results: dict[str, Any]) -> list[str]:
    found = results.get(RESULTS_KEY)
    if not found:
        return []
    overhead, writes = found["overhead"], found["writes"]
    off, on = overhead["off"], overhead["on"]
    intro = (
        f"Database: {found['database']}. **Recording on vs off:** the same questions answered as the Discord "
        "shell answers them (`answer_async`, then `AnswerRecorder.observe`, which queues the outcome count and any "
        "gap, with its vector, on the `WriteQueue`), with a recorder and without, the two taking turns; the "
        "queued writes run in the background while the next questions are timed (the queue is drained, "
        "untimed, between turns). Time is until the answer could be sent."
    )
    rows = [
        ["off", str(off["count"]), f"{off['p50']:.2f}", f"{off['p95']:.2f}", "-"],
        ["on", str(on["count"]), f"{on['p50']:.2f}", f"{on['p95']:.2f}",
         f"{overhead['writes_written']:,} of {overhead['writes_queued']:,} written"],
        ["on / off", "", f"{overhead['p50_ratio']:.3f}×", f"{overhead['p95_ratio']:.3f}×", ""],
    ]
    difference = overhead["difference"]
    paired = (
        f"Per question (the same question in the same run, with minus without): median {difference['median']:+.2f} ms, "
        f"bootstrap 95% interval [{difference['low']:+.2f}, {difference['high']:+.2f}] ms."
    )
    load_intro = (
        f"**Feedback writes under load:** {writes['writes_issued']:,} votes stored as a click stores them (an awaited "
        f"`Storage.record_feedback` each, up to {writes['write_concurrency']} at once) while "
        f"{writes['concurrency']} questions stay in flight (each asker asks again as soon as answered, and its "
        "answers are recorded through the write queue, as in the bot); then the stored votes are counted. The "
        "recorder columns are those questions' outcome counts and gaps, and how long the queue took to catch up "
        "once the votes were stored."
    )
    questions = writes["questions"]
    per_second = f"{writes['writes_issued'] / writes['seconds']:.0f}" if writes["seconds"] else "-"
    load_row = [
        f"{writes['writes_issued']:,}", f"{writes['writes_stored']:,}", str(writes["writes_raised"]),
        f"{writes['seconds']:.2f}", per_second, f"{questions['count']:,}", f"{questions['p50']:.1f}",
        f"{questions['p95']:.1f}", f"{writes['recorder_written']:,} of {writes['recorder_queued']:,}",
        str(writes["recorder_lost"]), f"{writes['drain_seconds']:.1f}",
    ]
    header = ["votes issued", "votes stored", "raised", "elapsed s", "votes/s", "questions answered",
              "question p50 ms", "question p95 ms", "recorder writes stored", "recorder writes lost",
              "queue catch-up s"]
    return [
        "## Storage under load", "", intro, "",
        *_table(["recording", "questions", "p50 ms", "p95 ms", "writes"], rows), paired, "",
        load_intro, "", *_table(header, [load_row]),
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return [*lines, *("| " + " | ".join(row) + " |" for row in rows), ""]
