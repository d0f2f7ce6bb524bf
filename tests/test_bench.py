"""``spacebot bench --quick`` runs end to end and writes every figure; no timing is asserted here.

The targets themselves are met (or not) in the benchmark run recorded in BENCHMARKS.md, never in tests.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.bench import report
from bot.bench.baselines import Bm25Baseline, Ranking
from bot.bench.inputs import load_question_sets, questions_root
from bot.bench.main import run_benchmarks
from bot.bench.quality import BASELINE_UNSUPPORTED, METRICS, baseline_row, fit_threshold
from bot.bench.scale import SyntheticCorpus, measure_scale
from bot.core.evaluation import Expectations
from bot.core.knowledge import KnowledgeBase, load_knowledge
from bot.core.questions import Question
from bot.core.vector_index import VectorIndex, choose_kind, ivf_lists, ivf_probes
from tests.conftest import REPO, SHIPPED_KNOWLEDGE, make_settings

# The session's ONNX export (tests/test_onnx_encoder.py) is reused rather than exported again.
from tests.test_onnx_encoder import bundled_model, int8_encoder, onnx_index_dir  # noqa: F401

SECTIONS = (
    "## Machine", "## Targets", "## Answer quality (holdout)", "## Warm latency per single question",
    "## Throughput through `Engine.answer_async`", "## Storage under load", "## Index builds",
    "## Cold start and peak memory",
    "## Scale: synthetic vectors", "## Notes",
)
ENGINE_ROWS = {"engine (onnx-int8)", "engine (torch)"}
BASELINE_ROWS = {"naive (ST torch + exact FAISS)", "ST ONNX backend (int8) + exact FAISS", "BM25 (bm25s)"}
LATENCY_PATHS = {"naive", "naive-1-thread", "st-onnx", "bm25", "engine-onnx", "engine-torch", "cache-hit"}
RATIO_TARGETS = (  # issue 9's targets, first in the table: (name starts with, results of value, of reference)
    ("warm answer latency p50", ("latency", "engine-onnx", "p50"), ("latency", "naive*", "p50")),
    ("cold start", ("cold_start", "spacebot-ask", "median_seconds"), ("cold_start", "naive", "median_seconds")),
    ("peak memory (RSS)", ("cold_start", "spacebot-ask", "peak_mib"), ("cold_start", "naive", "peak_mib")),
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, onnx_index_dir: Path, int8_encoder: Any  # noqa: F811
              ) -> tuple[Path, str]:
    """The quick run's report file and everything it printed."""
    output = tmp_path_factory.mktemp("bench") / "BENCHMARKS.md"
    settings = make_settings(onnx_index_dir.parent, knowledge_dir=SHIPPED_KNOWLEDGE, index_dir=onnx_index_dir,
                             encoder="onnx", judge_model=None)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert run_benchmarks(settings, quick=True, scale=None, output=output) == 0
    return output, printed.getvalue()


@pytest.fixture(scope="module")
def quick_report(quick_run: tuple[Path, str]) -> Path:
    return quick_run[0]


def _all_numbers_finite(value: object) -> bool:
    if isinstance(value, dict):
        return all(_all_numbers_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_all_numbers_finite(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def _lookup(results: dict[str, Any], path: tuple[str, ...]) -> float:
    """The figure at ``path``; "naive*" is the faster of the naive baseline's two thread settings."""
    if path == ("latency", "naive*", "p50"):
        return min(results["latency"]["naive"]["p50"], results["latency"]["naive-1-thread"]["p50"])
    value: Any = results
    for key in path:
        value = value[key]
    return float(value)


# -- the quick run ---------------------------------------------------------------------------------


def test_quick_bench_writes_every_section_and_the_latency_plot(quick_report: Path) -> None:
    text = quick_report.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section in text, section
    assert "![latency distributions](docs/benchmarks/latency.png)" in text
    plot = quick_report.parent / "docs" / "benchmarks" / "latency.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_bench_prints_a_verdict_for_each_ratio_target(quick_run: tuple[Path, str]) -> None:
    _, printed = quick_run
    for name, _, _ in RATIO_TARGETS:
        line = next((ln for ln in printed.splitlines() if ln.startswith("[") and name in ln), None)
        assert line is not None, name
        assert re.match(r"\[ *(PASS|FAIL)\] ", line), line
        assert re.search(r"= [0-9.e+-]+× \(1/[0-9.]+\)", line), line


def test_quick_bench_ratio_targets_are_the_ratios_of_the_recorded_figures(quick_report: Path) -> None:
    results = report.read_previous_results(quick_report)
    targets = report.compute_targets(results)
    for target, (name, value_path, reference_path) in zip(targets, RATIO_TARGETS, strict=False):
        assert target.name.startswith(name)
        value, reference = _lookup(results, value_path), _lookup(results, reference_path)
        assert value > 0 and reference > 0
        shown = float(re.search(r"= ([0-9.e+-]+)×", target.measured).group(1))  # type: ignore[union-attr]
        assert shown == pytest.approx(value / reference, rel=0.01)
        assert target.verdict in {"PASS", "FAIL"}


def test_quick_bench_records_every_figure(quick_report: Path) -> None:
    results = report.read_previous_results(quick_report)
    assert set(results["latency"]) == LATENCY_PATHS
    assert all(row["p50"] > 0 and row["count"] > 0 for row in results["latency"].values())
    assert [row["concurrency"] for row in results["throughput"]] == [1, 8, 64]
    assert all(row["per_second"] > 0 and row["worst_loop_lag_ms"] >= 0 for row in results["throughput"])
    assert results["dedupe"]["copies"] == 64 and results["dedupe"]["encoder_calls"] >= 1
    writes = results["storage"]["writes"]
    assert writes["writes_issued"] == writes["writes_stored"] > 0 and writes["recorder_lost"] == 0  # no lost write
    assert results["storage"]["overhead"]["on"]["count"] == results["storage"]["overhead"]["off"]["count"] > 0
    assert results["builds"]["full_seconds"] > 0 and results["builds"]["embedded_on_incremental"] == 1
    assert set(results["cold_start"]) == {"spacebot-ask", "naive"}
    assert all(run["peak_mib"] > 0 for run in results["cold_start"].values())
    assert list(results["scale"]) == ["5000"]
    assert {"CPU", "cores", "RAM", "Python", "libraries"} <= set(results["machine"])
    assert results["st_onnx_problem"] is None
    assert results["meta"]["holdout"] > 0 and results["meta"]["tuning"] > 0
    assert _all_numbers_finite(results)


def test_quick_bench_scores_engines_and_baselines_on_every_quality_column(quick_report: Path) -> None:
    rows = {row["name"]: row for row in report.read_previous_results(quick_report)["quality"]}
    assert set(rows) == ENGINE_ROWS | BASELINE_ROWS
    for name, row in rows.items():
        baseline = name in BASELINE_ROWS
        assert (row["threshold"] is not None) == baseline
        for key in METRICS:
            tally = row["metrics"][key]
            if baseline and key in BASELINE_UNSUPPORTED:
                assert tally is None, (name, key)
            else:
                assert 0 <= tally["good"] <= tally["total"], (name, key)
    assert rows["engine (onnx-int8)"]["metrics"]["hit_at_3"]["total"] > 0


def test_quick_bench_gives_every_target_a_verdict(quick_report: Path) -> None:
    targets = report.compute_targets(report.read_previous_results(quick_report))
    not_run = [t.name for t in targets if t.verdict == "NOT RUN"]
    assert len(not_run) == 1 and "1,000,000" in not_run[0]  # the quick run skips the 1M scale
    text = quick_report.read_text(encoding="utf-8")
    assert all(f"| {t.name} |" in text for t in targets)


def test_scale_only_run_adds_its_row_and_keeps_the_rest_of_the_report(quick_report: Path, tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    output.write_text(quick_report.read_text(encoding="utf-8"), encoding="utf-8")
    before = report.read_previous_results(output)
    settings = make_settings(tmp_path, knowledge_dir=SHIPPED_KNOWLEDGE)
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_benchmarks(settings, quick=False, scale=2_000, output=output) == 0
    after = report.read_previous_results(output)
    assert set(after["scale"]) == {"5000", "2000"}
    assert after["quality"] == before["quality"] and after["latency"] == before["latency"]


# -- inputs and quality scoring --------------------------------------------------------------------


def test_bench_sources_never_read_the_tests_folder() -> None:
    for source in (REPO / "bot" / "bench").glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"""["']tests(/|["'])""", text), source.name  # no "tests" or "tests/..." path
    assert questions_root().resolve() == (REPO / "questions").resolve()


def test_question_sets_keep_only_questions_the_knowledge_base_can_be_scored_on(mini_kb_dir: Path) -> None:
    knowledge = _knowledge(mini_kb_dir)
    sets = load_question_sets(knowledge, limit=None, latency_limit=5)
    assert sets.holdout and sets.tuning and sets.dropped > 0
    for question in [*sets.holdout, *sets.tuning]:
        assert all(pid in knowledge.passages for pid in (*question.expect, *question.acceptable))
    assert len(sets.latency) == 5
    assert all(text in {q.text for q in sets.tuning} for text in sets.latency)


def _knowledge(folder: Path) -> KnowledgeBase:
    knowledge = load_knowledge(folder).knowledge
    assert knowledge is not None
    return knowledge


def _question(text: str, category: str = "answerable", expect: tuple[str, ...] = ()) -> Question:
    return Question.model_validate({"q": text, "category": category, "expect": list(expect)})


def test_fitted_threshold_separates_answerable_from_out_of_scope_scores(mini_kb_dir: Path) -> None:
    expectations = Expectations(_knowledge(mini_kb_dir))
    pid = "moon-2021-03-ilrs-china-russia"
    questions = [_question("a", expect=(pid,)), _question("b", expect=(pid,)),
                 _question("c", "out_of_scope"), _question("d", "out_of_scope")]
    rankings = [Ranking((pid,), 0.7), Ranking((pid,), 0.6), Ranking((pid,), 0.3), Ranking((pid,), 0.2)]
    assert fit_threshold(questions, rankings, expectations) == pytest.approx(0.45)


def test_baseline_threshold_comes_from_tuning_questions_only(mini_kb_dir: Path) -> None:
    knowledge = _knowledge(mini_kb_dir)
    pid = "moon-2021-03-ilrs-china-russia"
    scores = {"tuned in": 0.8, "tuned out": 0.4, "held in": 0.5, "held out": 0.1}

    def rank_many(texts: Sequence[str]) -> list[Ranking]:
        return [Ranking((pid,), scores[text]) for text in texts]

    tuning = [_question("tuned in", expect=(pid,)), _question("tuned out", "out_of_scope")]
    holdout = [_question("held in", expect=(pid,)), _question("held out", "out_of_scope")]
    row = baseline_row("stub", rank_many, tuning=tuning, holdout=holdout, knowledge=knowledge)
    assert row.threshold == pytest.approx(0.6)  # fitted on the holdout, it would have been 0.3
    assert row.metrics["falsely_declined"] == {"good": 1, "total": 1}  # the holdout's 0.5 falls below it


def test_bm25_baseline_indexes_aliases_and_tags_like_the_engine(mini_kb_dir: Path) -> None:
    ranking = Bm25Baseline(_knowledge(mini_kb_dir)).rank("What is the ILRS?")  # only in its aliases and tags
    assert ranking.ids[0] == "moon-2021-03-ilrs-china-russia" and ranking.top_score > 0
    assert Bm25Baseline(_knowledge(mini_kb_dir)).rank("thanks!") == Ranking((), 0.0)


# -- scale -----------------------------------------------------------------------------------------


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
