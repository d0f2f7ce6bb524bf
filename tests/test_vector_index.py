"""Small flat indexes are searched with numpy: the same rows and scores as FAISS, no FAISS at load."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from bot.core.manifest import read_manifest
from bot.core.store import open_or_build
from bot.core.stored_index import _looks_like_flat_index, load_current
from bot.core.vector_index import NUMPY_MAX_ROWS, VectorIndex
from tests.support.fake_encoder import FakeEncoder
from tests.support.snapshots import build_index


def _unit_rows(rows: int, dimension: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("k", [1, 5, 40, 300])
def test_numpy_search_ranks_as_faiss_exact_search_does(k: int) -> None:
    vectors, queries = _unit_rows(300, 32, seed=1), _unit_rows(6, 32, seed=2)
    index = VectorIndex.build(vectors)
    reference = faiss.IndexFlatIP(32)
    reference.add(vectors)
    scores, rows = index.search(queries, k)
    expected_scores, expected_rows = reference.search(queries, k)
    assert index.faiss_index is None
    assert rows.dtype == np.int64 and rows.shape == (6, k)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    np.testing.assert_array_equal(rows[:, :5], expected_rows[:, :5])  # past the top, near-ties may swap


def test_numpy_search_puts_the_lower_row_first_on_a_tie() -> None:
    vectors = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (5, 1))
    scores, rows = VectorIndex.build(vectors).search(np.array([1.0, 0.0], dtype=np.float32), 3)
    assert rows.tolist() == [[0, 1, 2]]
    assert scores.tolist() == [[1.0, 1.0, 1.0]]



def test_an_empty_batch_of_queries_gets_empty_rows_of_the_same_types_as_faiss() -> None:
    index = VectorIndex(None, _unit_rows(4, 8, seed=3), "flat")
    queries = np.zeros((0, 8), dtype=np.float32)
    scores, rows = index.search(queries, 3)
    expected_scores, expected_rows = index.as_faiss().search(queries, 3)  # type: ignore[attr-defined]
    assert scores.shape == rows.shape == expected_scores.shape == (0, 3)
    assert (scores.dtype, rows.dtype) == (expected_scores.dtype, expected_rows.dtype)

def test_as_faiss_makes_the_faiss_index_from_the_vectors_when_asked() -> None:
    index = VectorIndex(None, _unit_rows(4, 8, seed=3), "flat")
    made = index.as_faiss()
    assert made is index.faiss_index is not None
    assert made.ntotal == 4 and made.d == 8  # type: ignore[attr-defined]
    assert NUMPY_MAX_ROWS >= 4


def test_a_saved_flat_index_loads_without_faiss_and_answers_the_same(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    built, _ = build_index(tmp_path, fake_encoder)
    loaded = load_current(tmp_path / "index", fake_encoder)
    assert loaded.vectors.faiss_index is None
    query = built.vectors.vectors[2]
    assert loaded.vectors.search(query, 3)[1].tolist() == built.vectors.search(query, 3)[1].tolist()
    reopened, report = open_or_build(built.knowledge, fake_encoder, tmp_path / "index")
    assert report.reused == len(built.ids) and reopened.folder == built.folder


def test_the_flat_index_file_check_accepts_what_faiss_wrote_and_refuses_anything_else(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    built, _ = build_index(tmp_path, fake_encoder)
    manifest = read_manifest(built.folder)
    assert _looks_like_flat_index(built.folder, manifest)
    faiss_file = built.folder / "index.faiss"
    data = faiss_file.read_bytes()
    faiss_file.write_bytes(data[:-4])
    assert not _looks_like_flat_index(built.folder, manifest)
    faiss_file.write_bytes(b"not a faiss index")
    assert not _looks_like_flat_index(built.folder, manifest)

