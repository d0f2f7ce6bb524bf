"""The FAISS vector index: exact inner product while that is fast, HNSW above a size threshold.

Vectors are L2-normalized, so inner product is cosine similarity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw"]

# Measured with `spacebot bench --scale`: below this many vectors an exact scan answers in well
# under a millisecond per query, so the recall loss of an approximate index buys nothing.
HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96


def choose_kind(count: int) -> IndexKind:
    return "hnsw" if count >= HNSW_THRESHOLD else "flat"


@dataclass
class VectorIndex:
    """A FAISS index plus the row-aligned vectors it was built from."""

    faiss_index: object
    vectors: np.ndarray
    kind: IndexKind

    @classmethod
    def build(cls, vectors: np.ndarray, kind: IndexKind | None = None) -> VectorIndex:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        count, dimension = vectors.shape
        kind = kind or choose_kind(count)
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            index = faiss.IndexFlatIP(dimension)
        if count:
            index.add(vectors)
        return cls(index, vectors, kind)

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
        scores, rows = self.faiss_index.search(queries, k)  # type: ignore[attr-defined]
        return scores, rows
