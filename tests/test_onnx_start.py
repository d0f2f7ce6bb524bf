"""Start-up fast path of the ONNX encoder: the graph optimized once per machine, reused, and checked.

Reuses the session's int8 export from ``test_onnx_encoder`` (exported once into a shared folder).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from bot.core.embedding import ResolvedModel
from bot.core.encoders import load_onnx_encoder
from bot.core.onnx_cache import OPTIMIZED_FILE, OPTIMIZED_META, find_export
from bot.core.onnx_runtime import EXPLORE_EVERY, OnnxEncoder, _FasterSession, intra_op_threads
from tests.test_onnx_encoder import TEXTS, bundled_model, int8_encoder, onnx_index_dir  # noqa: F401 (fixtures)


@pytest.fixture
def cache(onnx_index_dir: Path, int8_encoder: OnnxEncoder, tmp_path: Path) -> Path:  # noqa: F811
    """A private copy of the int8 export (the optimized graph not yet made)."""
    target = tmp_path / "onnx"
    shutil.copytree(onnx_index_dir / "onnx", target,
                    ignore=shutil.ignore_patterns("*-fp32-*", OPTIMIZED_FILE, OPTIMIZED_META))
    return target


def _export_folder(cache: Path) -> Path:
    return next(cache.glob("*-int8-*"))


def test_first_start_optimizes_and_keeps_the_graph_the_next_loads_it_as_it_is(
    bundled_model: ResolvedModel, cache: Path, int8_encoder: OnnxEncoder  # noqa: F811
) -> None:
    first_seen = find_export(bundled_model, cache, quantize=True)
    assert first_seen is not None and not first_seen.optimized
    first = load_onnx_encoder(bundled_model, cache, quantize=True)
    folder = _export_folder(cache)
    assert (folder / OPTIMIZED_FILE).is_file() and (folder / OPTIMIZED_META).is_file()
    again = find_export(bundled_model, cache, quantize=True)
    assert again is not None and again.optimized and again.graph == folder / OPTIMIZED_FILE
    second = load_onnx_encoder(bundled_model, cache, quantize=True)
    reference = int8_encoder.encode(TEXTS)
    np.testing.assert_allclose(first.encode(TEXTS), reference, atol=1e-5)
    np.testing.assert_allclose(second.encode(TEXTS), reference, atol=1e-5)


def test_a_damaged_optimized_graph_is_not_loaded(bundled_model: ResolvedModel, cache: Path) -> None:  # noqa: F811
    load_onnx_encoder(bundled_model, cache, quantize=True)
    graph = _export_folder(cache) / OPTIMIZED_FILE
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    found = find_export(bundled_model, cache, quantize=True)
    assert found is not None and not found.optimized
    load_onnx_encoder(bundled_model, cache, quantize=True)  # optimizes and records it again
    repaired = find_export(bundled_model, cache, quantize=True)
    assert repaired is not None and repaired.optimized


def test_an_optimized_graph_from_another_machine_is_not_loaded(
    bundled_model: ResolvedModel, cache: Path  # noqa: F811
) -> None:
    load_onnx_encoder(bundled_model, cache, quantize=True)
    record_file = _export_folder(cache) / OPTIMIZED_META
    record = json.loads(record_file.read_text(encoding="utf-8"))
    record_file.write_text(json.dumps({**record, "machine": "another-cpu"}), encoding="utf-8")
    found = find_export(bundled_model, cache, quantize=True)
    assert found is not None and not found.optimized


def test_a_damaged_source_graph_is_exported_again_even_with_an_optimized_copy(
    bundled_model: ResolvedModel, cache: Path  # noqa: F811
) -> None:
    load_onnx_encoder(bundled_model, cache, quantize=True)
    source = _export_folder(cache) / "model.onnx"
    source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    assert find_export(bundled_model, cache, quantize=True) is None


def test_a_big_int8_batch_runs_one_text_per_run_in_parallel_with_the_same_vectors(
    int8_encoder: OnnxEncoder,  # noqa: F811
) -> None:
    texts = (TEXTS * 4)[:8]
    one_by_one = np.vstack([int8_encoder.encode([text]) for text in texts])
    batched = int8_encoder.encode(texts, batch_size=len(texts))
    assert int8_encoder._runners is not None  # the texts ran side by side, one per core
    np.testing.assert_array_equal(batched, one_by_one)  # and none moved another's vector


@pytest.mark.skipif(intra_op_threads() < 2, reason="one core: there is only the one-thread session")
def test_two_texts_run_one_on_the_calling_thread_one_beside_it_with_the_same_vectors(
    int8_encoder: OnnxEncoder, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Two int8 texts (a follow-up and its resolved form): the calling thread encodes one
    itself instead of waiting for two pool threads to wake."""
    texts = TEXTS[:2]
    one_by_one = np.vstack([int8_encoder.encode([text]) for text in texts])
    threads: list[int] = []
    encode_batch = int8_encoder._encode_batch

    def noting_the_thread(encodings: list[object], session: object) -> np.ndarray:
        threads.append(threading.get_ident())
        return encode_batch(encodings, session)

    monkeypatch.setattr(int8_encoder, "_encode_batch", noting_the_thread)
    together = int8_encoder.encode(texts, batch_size=len(texts))

    assert len(threads) == 2 and threads.count(threading.get_ident()) == 1
    np.testing.assert_array_equal(together, one_by_one)


@pytest.mark.skipif(intra_op_threads() < 2, reason="one core: there is only the one-thread session")
def test_a_lone_question_gives_the_same_vector_on_every_core_and_on_one(
    bundled_model: ResolvedModel, cache: Path  # noqa: F811
) -> None:
    """Which session runs a question depends on the machine's load: they must agree to the bit, or
    the load would change answers."""
    encoder = load_onnx_encoder(bundled_model, cache, quantize=True)
    runs = [encoder.encode([TEXTS[0]]) for _ in range(6)]  # both sessions are tried, twice each, first
    assert encoder._one_core is not None
    for vector in runs[1:]:
        np.testing.assert_array_equal(vector, runs[0])


def test_the_faster_session_runs_lone_texts_and_the_other_is_retimed_now_and_then() -> None:
    faster = _FasterSession()
    picks = []
    for _ in range(4 + 2 * EXPLORE_EVERY):
        every_core = faster.pick()
        picks.append(every_core)
        faster.record(every_core, 1.0 if every_core else 0.25)  # one thread is faster here: a busy machine

    assert picks[:4] == [True, True, False, False]  # each session timed, its warm-up run not counted
    assert picks[4:].count(True) == 2  # re-timed once in every EXPLORE_EVERY runs
    assert picks[-1] is False


@pytest.mark.skipif(intra_op_threads() < 2, reason="one core: there is only the one-thread session")
def test_a_lone_question_while_another_encode_runs_takes_one_thread_and_times_nothing(
    bundled_model: ResolvedModel, cache: Path  # noqa: F811
) -> None:
    encoder = load_onnx_encoder(bundled_model, cache, quantize=True)
    alone = encoder.encode([TEXTS[0]])
    encoder._running = 1  # what a concurrent encode (a micro-batch, a gap being grouped) holds

    crowded = encoder.encode([TEXTS[0]])

    assert encoder._one_core is not None and encoder._faster._runs == 1  # not picked, not timed
    np.testing.assert_array_equal(crowded, alone)
    assert encoder._running == 1  # its own count released
