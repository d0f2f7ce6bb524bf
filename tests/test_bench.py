"""``spacebot bench --quick`` runs end to end and writes every figure; no timing is asserted here.

The targets themselves are met (or not) in the benchmark run recorded in BENCHMARKS.md, never in tests.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.bench import report
from bot.bench.main import run_benchmarks
from bot.bench.scale import SyntheticCorpus, measure_scale
from bot.core.vector_index import VectorIndex, choose_kind, ivf_lists, ivf_probes
from tests.conftest import SHIPPED_KNOWLEDGE, make_settings

# The session's ONNX export (tests/test_onnx_encoder.py) is reused rather than exported again.
from tests.test_onnx_encoder import bundled_model, int8_encoder, onnx_index_dir  # noqa: F401

SECTIONS = (
    "## Machine", "## Targets", "## Answer quality", "## Warm latency per single question",
    "## Throughput through `Engine.answer_async`", "## Index builds", "## Cold start and peak memory",
    "## Scale: synthetic vectors",
)
QUALITY_ROWS = {"engine (onnx-int8)", "engine (torch)", "naive (ST + exact FAISS)", "BM25 (bm25s)"}
LATENCY_PATHS = {"naive", "bm25", "engine-onnx", "engine-torch", "cache-hit"}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory, onnx_index_dir: Path, int8_encoder: Any) -> Path:  # noqa: F811
    output = tmp_path_factory.mktemp("bench") / "BENCHMARKS.md"
    settings = make_settings(onnx_index_dir.parent, knowledge_dir=SHIPPED_KNOWLEDGE, index_dir=onnx_index_dir,
                             encoder="onnx")
    assert run_benchmarks(settings, quick=True, scale=None, output=output) == 0
    return output


def _all_numbers_finite(value: object) -> bool:
    if isinstance(value, dict):
        return all(_all_numbers_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_all_numbers_finite(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def test_quick_bench_writes_every_section_and_the_latency_plot(quick_report: Path) -> None:
    text = quick_report.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section in text, section
    assert "![latency distributions](docs/benchmarks/latency.png)" in text
    plot = quick_report.parent / "docs" / "benchmarks" / "latency.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_bench_records_every_figure(quick_report: Path) -> None:
    results = report.read_previous_results(quick_report)
    assert {row["name"] for row in results["quality"]} == QUALITY_ROWS
    assert set(results["latency"]) == LATENCY_PATHS
    assert [row["concurrency"] for row in results["throughput"]] == [1, 8, 64]
    assert all(row["per_second"] > 0 and row["worst_loop_lag_ms"] >= 0 for row in results["throughput"])
    assert results["dedupe"]["copies"] == 64 and results["dedupe"]["encoder_calls"] >= 1
    assert results["builds"]["full_seconds"] > 0 and results["builds"]["embedded_on_incremental"] == 1
    assert set(results["cold_start"]) == {"spacebot-ask", "naive"}
    assert all(run["peak_mib"] > 0 for run in results["cold_start"].values())
    assert list(results["scale"]) == ["5000"]
    assert {"CPU", "cores", "RAM", "Python", "libraries"} <= set(results["machine"])
    assert _all_numbers_finite(results)


def test_quick_bench_gives_every_target_a_verdict(quick_report: Path) -> None:
    targets = report.compute_targets(report.read_previous_results(quick_report))
    verdicts = {t.name: t.verdict for t in targets}
    assert len(targets) == 12  # 13 once the 1M scale row exists (recall and search time)
    not_run = [name for name, verdict in verdicts.items() if verdict == "NOT RUN"]
    assert len(not_run) == 1 and "1,000,000" in not_run[0]  # the quick run skips the 1M scale
    text = quick_report.read_text(encoding="utf-8")
    assert all(f"| {t.name} |" in text for t in targets)


def test_scale_only_run_adds_its_row_and_keeps_the_rest_of_the_report(quick_report: Path, tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    output.write_text(quick_report.read_text(encoding="utf-8"), encoding="utf-8")
    before = report.read_previous_results(output)
    settings = make_settings(tmp_path, knowledge_dir=SHIPPED_KNOWLEDGE)
    assert run_benchmarks(settings, quick=False, scale=2_000, output=output) == 0
    after = report.read_previous_results(output)
    assert set(after["scale"]) == {"5000", "2000"}
    assert after["quality"] == before["quality"] and after["latency"] == before["latency"]


def test_scale_measurement_above_the_threshold_uses_ivf_with_high_recall() -> None:
    result = measure_scale(25_000, queries=50)
    assert result.index_kind == choose_kind(25_000) == "ivf"
    assert result.recall_at_10 >= 0.9
    assert result.search_p50_ms > 0 and result.exact_p50_ms > 0 and result.index_mib > 0


def test_ivf_index_keeps_its_nprobe_through_a_faiss_write_and_read(tmp_path: Path) -> None:
    import faiss

    vectors = SyntheticCorpus(25_000).sample(25_000, seed=1)
    index = VectorIndex.build(vectors, "ivf")
    faiss.write_index(index.faiss_index, str(tmp_path / "index.faiss"))
    loaded = faiss.read_index(str(tmp_path / "index.faiss"))
    assert faiss.extract_index_ivf(loaded).nprobe == ivf_probes(ivf_lists(25_000)) > 1
    _, rows = VectorIndex(loaded, vectors, "ivf").search(vectors[:1], 5)
    assert rows[0][0] == 0


def test_synthetic_corpus_is_deterministic_and_unit_length() -> None:
    first = SyntheticCorpus(1_000).sample(200, seed=3)
    second = SyntheticCorpus(1_000).sample(200, seed=3)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
