"""The index at scale: a synthetic corpus of N unit vectors, the automatic index choice against exact search.

The corpus has structure, so that nearest neighbours mean something (uniform random vectors in 384
dimensions are all about equally far apart): N/100 topics, each a random centre plus its own random
8-dimensional subspace along which its points spread, plus isotropic noise. Like sentence embeddings,
points cluster by topic and vary along a few directions within it. On a harder variant (one 32-dimensional
latent space shared by all topics) IVF recall@10 at 1M falls to ~0.5 at nprobe 256: see BENCHMARKS.md.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from bot.core.vector_index import VectorIndex, choose_kind

log = logging.getLogger(__name__)

DIMENSION = 384
POINTS_PER_TOPIC = 100
LATENT_DIMENSIONS = 8
LATENT_SPREAD = 1.5
NOISE = 0.3
RECALL_AT = 10
CHUNK = 20_000


@dataclass(frozen=True)
class ScaleResult:
    passages: int
    index_kind: str
    build_seconds: float
    exact_build_seconds: float
    index_mib: float
    vectors_mib: float
    rss_growth_mib: float
    search_p50_ms: float
    search_p99_ms: float
    exact_p50_ms: float
    exact_p99_ms: float
    recall_at_10: float
    queries: int

    @property
    def search_ratio(self) -> float:
        return self.search_p50_ms / self.exact_p50_ms if self.exact_p50_ms else 0.0


class SyntheticCorpus:
    """Deterministic clustered unit vectors; ``sample(n, seed)`` draws n more from the same distribution."""

    def __init__(self, passages: int, *, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        topics = max(16, passages // POINTS_PER_TOPIC)
        self._centres = _unit_rows(rng.standard_normal((topics, DIMENSION), dtype=np.float32))
        # near-orthonormal random directions per topic (random Gaussian rows scaled to unit length on average)
        self._bases = rng.standard_normal((topics, LATENT_DIMENSIONS, DIMENSION), dtype=np.float32)
        self._bases /= np.float32(math.sqrt(DIMENSION))

    def sample(self, count: int, *, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        vectors = np.empty((count, DIMENSION), dtype=np.float32)
        for start in range(0, count, CHUNK):
            size = min(CHUNK, count - start)
            topic = rng.integers(len(self._centres), size=size)
            weights = rng.standard_normal((size, LATENT_DIMENSIONS), dtype=np.float32)
            latent = np.einsum("nl,nld->nd", weights, self._bases[topic])
            noise = rng.standard_normal((size, DIMENSION), dtype=np.float32)
            vectors[start:start + size] = _unit_rows(
                self._centres[topic] + latent * (LATENT_SPREAD / math.sqrt(LATENT_DIMENSIONS))
                + noise * (NOISE / math.sqrt(DIMENSION))
            )
        return vectors


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1 << 20)


def faiss_index_mib(index: VectorIndex) -> float:
    import faiss

    return faiss.serialize_index(index.faiss_index).nbytes / (1 << 20)


def single_query_times(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[float]]:
    """Rows found and milliseconds per query, one query at a time (as the bot searches)."""
    found = np.empty((len(queries), k), dtype=np.int64)
    times = []
    for row, query in enumerate(queries):
        started = time.perf_counter()
        _, rows = index.search(query, k)
        times.append((time.perf_counter() - started) * 1000)
        found[row] = rows[0]
    return found, times


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(a.tolist()) & set(b.tolist())) / truth.shape[1] for a, b in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def measure_scale(passages: int, *, queries: int = 500) -> ScaleResult:
    """Build the automatically chosen index and an exact one over the same vectors; compare them."""
    corpus = SyntheticCorpus(passages)
    started = time.perf_counter()
    vectors = corpus.sample(passages, seed=1)
    log.info("scale: %d synthetic vectors in %.1fs", passages, time.perf_counter() - started)
    probe = corpus.sample(queries, seed=2)
    kind = choose_kind(passages)

    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    chosen = VectorIndex.build(vectors, kind)
    build_seconds = time.perf_counter() - started
    rss_growth = rss_mib() - before
    log.info("scale: %s index over %d vectors built in %.1fs", kind, passages, build_seconds)

    started = time.perf_counter()
    exact = VectorIndex.build(vectors, "flat")
    exact_build = time.perf_counter() - started
    truth, exact_times = single_query_times(exact, probe, RECALL_AT)
    found, times = single_query_times(chosen, probe, RECALL_AT)
    return ScaleResult(
        passages=passages, index_kind=kind, build_seconds=build_seconds, exact_build_seconds=exact_build,
        index_mib=faiss_index_mib(chosen) if kind != "flat" else vectors.nbytes / (1 << 20),
        vectors_mib=vectors.nbytes / (1 << 20), rss_growth_mib=rss_growth,
        search_p50_ms=float(np.percentile(times, 50)), search_p99_ms=float(np.percentile(times, 99)),
        exact_p50_ms=float(np.percentile(exact_times, 50)), exact_p99_ms=float(np.percentile(exact_times, 99)),
        recall_at_10=recall_at(found, truth), queries=queries,
    )
