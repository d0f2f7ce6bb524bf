"""Warm latency, cache hits, and throughput with the event-loop lag seen through the async API."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from bot.core.embedding import Encoder
from bot.core.engine import Engine

TICK_SECONDS = 0.005


@dataclass(frozen=True)
class LatencyStats:
    samples_ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        return float(np.percentile(self.samples_ms, 50)) if self.samples_ms else 0.0

    @property
    def p99(self) -> float:
        return float(np.percentile(self.samples_ms, 99)) if self.samples_ms else 0.0

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms) if self.samples_ms else 0.0


@dataclass(frozen=True)
class ThroughputResult:
    concurrency: int
    questions: int
    seconds: float
    worst_loop_lag_ms: float
    encoder_calls: int

    @property
    def per_second(self) -> float:
        return self.questions / self.seconds if self.seconds else 0.0


def time_each(call: Callable[[str], object], questions: Sequence[str], *, runs: int, warmup: int = 3) -> LatencyStats:
    """Milliseconds per single-question call, over ``runs`` passes through the questions."""
    return time_interleaved({"only": call}, questions, runs=runs, warmup=warmup)["only"]


def time_interleaved(
    calls: Mapping[str, Callable[[str], object]], questions: Sequence[str], *, runs: int, warmup: int = 3,
    setups: Mapping[str, Callable[[], AbstractContextManager[object]]] | None = None,
) -> dict[str, LatencyStats]:
    """Milliseconds per single-question call for each system; in each run every system asks all the
    questions in turn, so a change in the machine's load over the runs touches every system alike.

    Systems take turns per run, not per question: thread pools that spin after a call (torch's OpenMP,
    onnxruntime's defaults) would otherwise slow the next system's call. ``setups[name]`` is entered
    around that system's turns (e.g. :func:`one_torch_thread`).
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            with (setups or {}).get(name, contextlib.nullcontext)():
                for question in questions[:warmup]:
                    call(question)
                for question in questions:
                    started = time.perf_counter()
                    call(question)
                    samples[name].append((time.perf_counter() - started) * 1000)
    return {name: LatencyStats(tuple(got)) for name, got in samples.items()}


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch limited to one intra-op thread, restored after: on a machine whose cores are busy with other
    work, torch's spinning thread pool is the first thing to slow down."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def cache_hit_latency(engine: Engine, question: str, *, repeats: int) -> LatencyStats:
    """A repeated question: the first call fills the LRU cache, the rest are timed."""
    engine.answer(question)
    return time_each(engine.answer, [question] * repeats, runs=1, warmup=0)


class CountingEncoder:
    """Wraps an encoder and counts its calls, to show micro-batching and in-flight dedupe at work."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        with self._lock:
            self.calls += 1
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


def concurrent_throughput(
    engine: Engine, counter: CountingEncoder, questions: Sequence[str], concurrency: int
) -> ThroughputResult:
    """Questions through ``Engine.answer_async`` with at most ``concurrency`` in flight, plus the worst loop lag."""
    return asyncio.run(_concurrent(engine, counter, questions, concurrency))


async def _concurrent(
    engine: Engine, counter: CountingEncoder, questions: Sequence[str], concurrency: int
) -> ThroughputResult:
    gate = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    lags: list[float] = []

    async def ticker() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(TICK_SECONDS)
            lags.append(time.perf_counter() - started - TICK_SECONDS)

    async def ask(question: str) -> None:
        async with gate:
            await engine.answer_async(question)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(TICK_SECONDS * 2)
    calls_before = counter.calls
    started = time.perf_counter()
    await asyncio.gather(*(ask(q) for q in questions))
    seconds = time.perf_counter() - started
    stop.set()
    await ticking
    return ThroughputResult(concurrency, len(questions), seconds, max(lags, default=0.0) * 1000,
                            counter.calls - calls_before)


def dedupe_encoder_calls(engine: Engine, counter: CountingEncoder, question: str, copies: int) -> int:
    """How many encoder calls ``copies`` concurrent asks of one (uncached) question cost."""

    async def run() -> int:
        before = counter.calls
        await asyncio.gather(*(engine.answer_async(question) for _ in range(copies)))
        return counter.calls - before

    return asyncio.run(run())
