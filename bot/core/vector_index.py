"""The FAISS vector index: exact inner product while that is fast, IVF-Flat above a size threshold.

Vectors are L2-normalized, so inner product is cosine similarity.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

IndexKind = Literal["flat", "ivf", "hnsw"]

# Measured with `spacebot bench --scale N` on the 2-core EPYC (BENCHMARKS.md, "Scale"; clustered synthetic
# vectors, single-query search on one thread):
# - an exact scan (IndexFlatIP) costs ~50 µs per 1,000 vectors (100k: ~5.5 ms p50, 1M: 46-55 ms); below
#   20,000 vectors it stays around 1 ms, no more than the rest of the answer path, so approximation buys nothing;
# - build time decides between the approximate kinds, because the store rebuilds the whole index on every
#   knowledge change: HNSW (M=16, efConstruction=80) took 24 s at 100k and had not finished after 6.5 min at
#   1M (cores shared with other jobs); IVF-Flat took 4-7 s at 100k and 38-84 s at 1M (4096 lists, k-means on
#   40 points per list, 10 iterations);
# - IVF at 1M, 4096 lists, 300 queries: nprobe 64 -> recall@10 0.924 (1.1 ms p50), 128 -> 0.949 (2.2 ms),
#   192 -> 0.963 (3.3 ms), 256 -> 0.971 (4.3 ms), exact 55 ms. nprobe = 3/64 of the lists (192 at 1M) keeps
#   recall@10 >= 0.95 with p50 under 1/10 of exact.
IVF_THRESHOLD = 20_000
IVF_LISTS_PER_SQRT = 4  # nlist ~ 4 * sqrt(N), rounded to a power of two
IVF_TRAINING_POINTS_PER_LIST = 40
IVF_TRAINING_ITERATIONS = 10
IVF_PROBE_FRACTION = 3 / 64
IVF_MIN_PROBES = 8
IVF_SEED = 1234
# HNSW stays available on request (VectorIndex.build(vectors, "hnsw")) but is never chosen automatically.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
# A flat index up to this size is searched with numpy: 439 passages, one query: ~20 us, against ~250 us
# through FAISS (most of it setting its OpenMP threads), and no FAISS import at start-up.
NUMPY_MAX_ROWS = IVF_THRESHOLD
# One query searched on 2 OpenMP threads was 4-5x slower than on one (100k flat: p50 6 ms vs 25-31 ms):
# thread wake-up costs more than the scan it splits. Batches keep every thread.
SINGLE_THREAD_MAX_QUERIES = 4


def choose_kind(count: int) -> IndexKind:
    return "ivf" if count >= IVF_THRESHOLD else "flat"


def ivf_lists(count: int) -> int:
    target = max(1, IVF_LISTS_PER_SQRT * math.isqrt(max(1, count)))
    trainable = max(1, count // IVF_TRAINING_POINTS_PER_LIST)  # k-means needs enough points per list
    return min(1 << round(math.log2(target)), trainable)


def ivf_probes(lists: int) -> int:
    return min(lists, max(IVF_MIN_PROBES, round(lists * IVF_PROBE_FRACTION)))


def _build_ivf(vectors: np.ndarray) -> object:
    import faiss

    count, dimension = vectors.shape
    lists = ivf_lists(count)
    index = faiss.index_factory(dimension, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.niter = IVF_TRAINING_ITERATIONS
    ivf.cp.seed = IVF_SEED
    sample_size = min(count, lists * IVF_TRAINING_POINTS_PER_LIST)
    rows = np.sort(np.random.default_rng(IVF_SEED).choice(count, size=sample_size, replace=False))
    index.train(vectors[rows])
    ivf.nprobe = ivf_probes(lists)
    return index


@dataclass
class VectorIndex:
    """A FAISS index plus the row-aligned vectors it was built from.

    A flat index of up to ``NUMPY_MAX_ROWS`` vectors is searched with numpy (the same exact inner
    products, and no FAISS import or second copy of the vectors): its ``faiss_index`` is made from the
    vectors only when something asks for it (writing it to disk, or a larger search).
    """

    faiss_index: object | None
    vectors: np.ndarray
    kind: IndexKind

    @classmethod
    def build(cls, vectors: np.ndarray, kind: IndexKind | None = None) -> VectorIndex:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        count, dimension = vectors.shape
        kind = kind or choose_kind(count)
        if kind == "flat" and count <= NUMPY_MAX_ROWS:
            return cls(None, vectors, kind)
        if kind == "ivf":
            index = _build_ivf(vectors)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            index = faiss.IndexFlatIP(dimension)
        if count:
            index.add(vectors)
        return cls(index, vectors, kind)

    def as_faiss(self) -> object:
        """The FAISS index (for a flat one searched with numpy, made from the vectors now)."""
        if self.faiss_index is None:
            import faiss

            index = faiss.IndexFlatIP(self.dimension)
            if self.count:
                index.add(self.vectors)
            self.faiss_index = index
        return self.faiss_index

    @property
    def count(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers of the ``k`` nearest rows for each query (-1 where fewer exist)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.count)) if self.count else 1
        if not self.count:
            empty = np.full((len(queries), 1), -1, dtype=np.int64)
            return np.zeros((len(queries), 1), dtype=np.float32), empty
        if self.kind == "flat" and self.count <= NUMPY_MAX_ROWS:
            return _exact_search(self.vectors, queries, k)
        index = self.as_faiss()
        with _single_thread_if(len(queries) <= SINGLE_THREAD_MAX_QUERIES):
            scores, rows = index.search(queries, k)  # type: ignore[attr-defined]
        return scores, rows


def _exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every inner product, then the ``k`` best per query, best first (ties: lower row first)."""
    similarities = queries @ vectors.T
    best = [_best_rows(row, k) for row in similarities]
    shape = (len(best), min(k, similarities.shape[1]))  # kept for an empty batch of queries too
    scores = np.array([scores for scores, _ in best], dtype=similarities.dtype).reshape(shape)
    return scores, np.array([rows for _, rows in best], dtype=np.int64).reshape(shape)


def _best_rows(similarities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One query's ``k`` best scores and rows, best first (ties: lower row first)."""
    if k < len(similarities):
        candidates = np.argpartition(-similarities, k - 1)[:k]
        candidates.sort()  # the stable order below keeps the lower row first on ties
    else:
        candidates = np.arange(len(similarities))
    scores = similarities[candidates]
    order = np.argsort(-scores, kind="stable")
    return scores[order], candidates[order].astype(np.int64)


@contextlib.contextmanager
def _single_thread_if(condition: bool) -> Iterator[None]:
    """Run FAISS on one OpenMP thread for a few queries (the setting is per calling thread, and restored)."""
    if not condition:
        yield
        return
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
