"""``spacebot bench``: run every measurement, print the targets, write BENCHMARKS.md and the latency plot."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.bench.report import PLOT_PATH, Results, compute_targets, plot_latencies, read_previous_results, render_markdown
from bot.core.config import Settings

log = logging.getLogger(__name__)

REPO_QUESTIONS = Path(__file__).resolve().parents[2] / "tests" / "data" / "questions"
CONCURRENCY_LEVELS = (1, 8, 64)
DEDUPE_COPIES = 64
COLD_QUESTION = "When is Russia leaving the ISS?"


@dataclass(frozen=True)
class Plan:
    """How much of everything to run: the full benchmark, or the few-second CI smoke run."""

    quick: bool
    question_limit: int | None
    latency_runs: int
    cache_repeats: int
    throughput_rounds: int
    kb_size: int
    incremental_runs: int
    cold_runs: int
    scale: int

    @classmethod
    def for_mode(cls, *, quick: bool) -> Plan:
        if quick:
            return cls(quick=True, question_limit=40, latency_runs=1, cache_repeats=20, throughput_rounds=1,
                       kb_size=300, incremental_runs=1, cold_runs=1, scale=5_000)
        return cls(quick=False, question_limit=None, latency_runs=3, cache_repeats=500, throughput_rounds=2,
                   kb_size=1_000, incremental_runs=5, cold_runs=5, scale=100_000)


def run_benchmarks(settings: Settings, *, quick: bool = False, scale: int | None = None,
                   output: Path = Path("BENCHMARKS.md")) -> int:
    """Entry point of ``spacebot bench``. ``scale`` alone (without ``quick``) runs only the scale test at N."""
    started = time.perf_counter()
    previous = read_previous_results(output)
    if scale is not None and not quick:
        results = previous or {}
        results.setdefault("scale", {})[str(scale)] = _scale_row(scale)
    else:
        plan = Plan.for_mode(quick=quick)
        results = _run_all(settings, plan, scale or plan.scale, output)
        if results is None:
            return 1
        kept = {n: row for n, row in previous.get("scale", {}).items() if not plan.quick}
        results["scale"] = {**kept, **results["scale"]}
        results["meta"]["seconds"] = time.perf_counter() - started
    _write_report(results, output)
    return 0


def _scale_row(passages: int) -> dict[str, Any]:
    from bot.bench.scale import measure_scale

    print(f"scale: {passages:,} synthetic vectors …", flush=True)
    row = asdict(measure_scale(passages))
    print(f"  {row['index_kind']}: build {row['build_seconds']:.1f}s, p50 {row['search_p50_ms']:.3f} ms "
          f"(exact {row['exact_p50_ms']:.2f} ms), recall@10 {row['recall_at_10']:.3f}", flush=True)
    return row


def _write_report(results: Results, output: Path) -> None:
    targets = compute_targets(results)
    plot = None
    samples = results.pop("_samples", None)
    if samples:
        plot_latencies(samples, output.parent / PLOT_PATH)
    if (output.parent / PLOT_PATH).is_file():
        plot = PLOT_PATH
    output.write_text(render_markdown(results, targets, plot=plot), encoding="utf-8")
    print()
    for target in targets:
        print(f"[{target.verdict:>7}] {target.name}: {target.measured} (target {target.limit})")
    print(f"\nreport written to {output}")


# -- the full run ----------------------------------------------------------------------------------


def _run_all(settings: Settings, plan: Plan, scale: int, output: Path) -> Results | None:
    from bot.bench.machine import describe_machine

    results: Results = {
        "meta": {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "quick": plan.quick},
        "machine": describe_machine(),
    }
    with _workspace() as root:
        if plan.quick:
            settings = settings.model_copy(update={"knowledge_dir": _small_knowledge(settings.knowledge_dir, root)})
        loaded = _knowledge_and_questions(settings, plan)
        if loaded is None:
            return None
        knowledge, questions = loaded
        results["meta"] |= {"passages": len(knowledge), "questions": len(questions)}
        systems = _Systems.open(settings, root)
        results["quality"] = _quality(systems, questions, knowledge)
        latency, samples = _latency(systems, [q.text for q in questions], plan)
        results["latency"], results["_samples"] = latency, samples
        results["throughput"], results["dedupe"] = _throughput(systems, [q.text for q in questions], plan)
        results["builds"] = _builds(systems, knowledge, plan)
        results["cold_start"] = _cold_starts(settings, systems, root, plan)
    results["scale"] = {str(scale): _scale_row(scale)}
    return results


def _knowledge_and_questions(settings: Settings, plan: Plan) -> tuple[Any, list[Any]] | None:
    from bot.core.evaluation import load_questions
    from bot.core.knowledge import load_knowledge

    loaded = load_knowledge(settings.knowledge_dir)
    if loaded.knowledge is None:
        for error in loaded.errors:
            print(f"error: {error}", file=sys.stderr)
        return None
    knowledge = loaded.knowledge
    questions = [
        q for q in load_questions(_questions_folder())
        if q.out_of_scope or all(pid in knowledge.passages for pid in q.expect)
    ]
    if plan.question_limit:
        in_scope = [q for q in questions if not q.out_of_scope]
        declined = [q for q in questions if q.out_of_scope]
        keep_declined = max(2, plan.question_limit // 5)
        questions = in_scope[: plan.question_limit - keep_declined] + declined[:keep_declined]
    return knowledge, questions


def _questions_folder() -> Path:
    local = Path("tests/data/questions")
    return local if local.is_dir() else REPO_QUESTIONS


def _small_knowledge(knowledge_dir: Path, root: Path, topics: int = 3) -> Path:
    """The quick run's knowledge base: the smallest few topic files (and the scope), copied to ``root``."""
    small = root / "knowledge"
    small.mkdir()
    for name in ("scope.md", "README.md"):
        if (knowledge_dir / name).is_file():
            shutil.copy(knowledge_dir / name, small / name)
    for path in sorted(knowledge_dir.glob("*.yaml"), key=lambda p: (p.stat().st_size, p.name))[:topics]:
        shutil.copy(path, small / path.name)
    return small


@contextlib.contextmanager
def _workspace() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="spacebot-bench-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class _Systems:
    """Everything measured side by side, opened once over the same passages."""

    onnx_settings: Settings
    onnx: Any  # Engine, cache off, encoder wrapped in a call counter
    counter: Any
    cached: Any  # the same engine with the answer cache on
    torch: Any  # Engine on TorchEncoder, cache off
    naive: Any
    bm25: Any
    model_location: str

    @classmethod
    def open(cls, settings: Settings, root: Path) -> _Systems:
        from bot.bench.latency import CountingEncoder
        from bot.bench.quality import Bm25Baseline, NaiveBaseline
        from bot.core.embedding import TorchEncoder, resolve_model
        from bot.core.engine import Engine
        from bot.core.onnx_encoder import OnnxEncoder

        model = resolve_model(settings.embedding_model)
        export_cache = settings.index_dir / "onnx"
        print("opening the engines and baselines (the first run exports the ONNX model) …", flush=True)
        counter = CountingEncoder(OnnxEncoder.load_or_export(model, export_cache, quantize=settings.onnx_quantize))
        onnx_index = root / "index-onnx"
        onnx_index.mkdir()
        os.symlink(export_cache.resolve(), onnx_index / "onnx")  # the cold-start child reuses the export
        onnx_engine = Engine.open(_bench_settings(settings, onnx_index, "onnx", cache_size=0), counter)
        cached = Engine.open(_bench_settings(settings, onnx_index, "onnx", cache_size=512), counter.inner)
        torch_engine = Engine.open(_bench_settings(settings, root / "index-torch", "torch", cache_size=0),
                                   TorchEncoder(model))
        stored = torch_engine.snapshot.stored
        if list(stored.ids) != list(stored.knowledge.passages):
            raise RuntimeError("the torch index rows are not in knowledge-base order")
        return cls(
            onnx_settings=onnx_engine.settings, onnx=onnx_engine, counter=counter, cached=cached, torch=torch_engine,
            # the naive baseline encodes passages exactly as the torch engine did: reuse those vectors
            naive=NaiveBaseline(model.location, stored.knowledge, passage_vectors=stored.vectors.vectors),
            bm25=Bm25Baseline(stored.knowledge), model_location=model.location,
        )


def _bench_settings(settings: Settings, index_dir: Path, encoder: str, *, cache_size: int) -> Settings:
    return settings.model_copy(update={"index_dir": index_dir, "encoder": encoder, "cache_size": cache_size})


def _quality(systems: _Systems, questions: list[Any], knowledge: Any) -> list[dict[str, Any]]:
    from bot.bench.quality import QualityRow, score_baseline
    from bot.core.evaluation import evaluate

    print("answer quality …", flush=True)
    rows = [
        QualityRow.from_report("engine (onnx-int8)", evaluate(questions, systems.onnx.answer_many),
                               systems.onnx.min_score),
        QualityRow.from_report("engine (torch)", evaluate(questions, systems.torch.answer_many),
                               systems.torch.min_score),
        score_baseline("naive (ST + exact FAISS)", questions, systems.naive.rank, knowledge),
        score_baseline("BM25 (bm25s)", questions, systems.bm25.rank, knowledge),
    ]
    return [asdict(row) for row in rows]


def _latency(systems: _Systems, texts: list[str], plan: Plan) -> tuple[dict[str, Any], dict[str, list[float]]]:
    from bot.bench.latency import cache_hit_latency, time_each

    print("warm latency …", flush=True)
    measured = {
        "naive": time_each(systems.naive.rank, texts, runs=plan.latency_runs),
        "bm25": time_each(systems.bm25.rank, texts, runs=plan.latency_runs),
        "engine-torch": time_each(systems.torch.answer, texts, runs=plan.latency_runs),
        "engine-onnx": time_each(systems.onnx.answer, texts, runs=plan.latency_runs),
        "cache-hit": cache_hit_latency(systems.cached, texts[0], repeats=plan.cache_repeats),
    }
    table = {
        key: {"p50": s.p50, "p99": s.p99, "mean": s.mean, "count": len(s.samples_ms)} for key, s in measured.items()
    }
    labels = {"naive": "naive (ST torch)", "bm25": "BM25 alone", "engine-torch": "engine, torch",
              "engine-onnx": "engine, onnx-int8", "cache-hit": "engine, cache hit"}
    return table, {labels[key]: list(s.samples_ms) for key, s in measured.items()}


def _throughput(systems: _Systems, texts: list[str], plan: Plan) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from bot.bench.latency import concurrent_throughput, dedupe_encoder_calls

    print("throughput through answer_async …", flush=True)
    batch = texts * plan.throughput_rounds
    concurrent_throughput(systems.onnx, systems.counter, texts[:16], 8)  # warm the batcher and the threads
    rows = []
    for level in CONCURRENCY_LEVELS:
        result = concurrent_throughput(systems.onnx, systems.counter, batch, level)
        rows.append({**asdict(result), "per_second": result.per_second})
    calls = dedupe_encoder_calls(systems.onnx, systems.counter, "Who signed the Artemis Accords most recently?",
                                 DEDUPE_COPIES)
    return rows, {"copies": DEDUPE_COPIES, "encoder_calls": calls}


def _builds(systems: _Systems, knowledge: Any, plan: Plan) -> dict[str, Any]:
    from bot.bench.builds import measure_builds

    print(f"index builds on a {plan.kb_size}-passage synthetic knowledge base …", flush=True)
    times = measure_builds(knowledge, systems.counter.inner, size=plan.kb_size, incremental_runs=plan.incremental_runs)
    return {**asdict(times), "ratio": times.ratio, "encoder": systems.counter.kind}


def _cold_starts(settings: Settings, systems: _Systems, root: Path, plan: Plan) -> dict[str, Any]:
    from bot.bench.coldstart import ASK_SCRIPT, NAIVE_SCRIPT, measure_cold_starts

    print("cold starts (subprocesses) …", flush=True)
    env = {
        "SPACEBOT_INDEX_DIR": str(systems.onnx_settings.index_dir), "SPACEBOT_KNOWLEDGE_DIR": str(
            settings.knowledge_dir.resolve()),
        "SPACEBOT_ENCODER": "onnx", "SPACEBOT_ONNX_QUANTIZE": str(settings.onnx_quantize).lower(),
        "SPACEBOT_LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1",
    }
    runs = {
        "spacebot-ask": measure_cold_starts("spacebot ask", ASK_SCRIPT, [COLD_QUESTION], runs=plan.cold_runs,
                                            env=env, cwd=root),
        "naive": measure_cold_starts("naive", NAIVE_SCRIPT, [systems.model_location, COLD_QUESTION],
                                     runs=plan.cold_runs, env={"HF_HUB_OFFLINE": "1"}, cwd=root),
    }
    return {name: {**asdict(run), "median_seconds": run.median_seconds, "peak_mib": run.peak_mib}
            for name, run in runs.items()}
