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
from typing import TYPE_CHECKING, Any

from bot.bench.report import PLOT_PATH, Results, compute_targets, plot_latencies, read_previous_results, render_markdown
from bot.core.config import EngineSettings

if TYPE_CHECKING:
    from bot.bench.coldstart import Child
    from bot.bench.inputs import QuestionSets
    from bot.bench.systems import Systems
    from bot.core.knowledge import KnowledgeBase

log = logging.getLogger(__name__)

CONCURRENCY_LEVELS = (1, 8, 64)
DEDUPE_COPIES = 64
COLD_QUESTION = "When is Russia leaving the ISS?"
DEDUPE_QUESTION = "Who signed the Artemis Accords most recently?"
LATENCY_KEYS = {  # results key -> label in the plot
    "naive": "naive (ST torch)", "naive-1-thread": "naive, 1 torch thread", "st-onnx": "ST ONNX backend",
    "bm25": "BM25 alone",
    "engine-torch": "engine, torch", "engine-onnx": "engine, onnx", "cache-hit": "engine, cache hit",
}


@dataclass(frozen=True)
class Plan:
    """How much of everything to run: the full benchmark, or the CI smoke run (every section, tiny sizes)."""

    quick: bool
    question_limit: int | None  # per split
    latency_questions: int | None
    latency_runs: int
    cache_repeats: int
    throughput_rounds: int
    kb_size: int
    incremental_runs: int
    cold_runs: int
    cold_warmup: bool
    st_onnx_cold: bool  # the ST ONNX process too (about as slow to start as naive: the quick run skips it)
    scale: int
    storage_runs: int  # passes per mode of the recording on/off comparison
    storage_writes: int  # feedback writes issued while 64 questions run

    @classmethod
    def for_mode(cls, *, quick: bool) -> Plan:
        if quick:
            return cls(quick=True, question_limit=24, latency_questions=12, latency_runs=1, cache_repeats=20,
                       throughput_rounds=1, kb_size=100, incremental_runs=1, cold_runs=1, cold_warmup=False,
                       st_onnx_cold=False, scale=5_000, storage_runs=1, storage_writes=200)
        return cls(quick=False, question_limit=None, latency_questions=200, latency_runs=2, cache_repeats=500,
                   throughput_rounds=2, kb_size=1_000, incremental_runs=5, cold_runs=3, cold_warmup=True,
                   st_onnx_cold=True, scale=100_000, storage_runs=3, storage_writes=1_000)


def run_benchmarks(settings: EngineSettings, *, quick: bool = False, scale: int | None = None,
                   output: Path = Path("BENCHMARKS.md")) -> int:
    """Entry point of ``spacebot bench``. ``scale`` alone (without ``quick``) runs only the scale test at N."""
    started = time.perf_counter()
    previous = read_previous_results(output)
    if scale is not None and not quick:
        results = previous or {}
        results.setdefault("scale", {})[str(scale)] = _scale_row(scale)
    else:
        plan = Plan.for_mode(quick=quick)
        results = _run_all(settings, plan, scale or plan.scale)
        if results is None:
            return 1
        measured_before = str(previous.get("meta", {}).get("date", ""))[:10] or "an earlier run"
        kept = {n: {"date": measured_before, **row} for n, row in previous.get("scale", {}).items() if not plan.quick}
        results["scale"] = {**kept, **results["scale"]}
        results["meta"]["seconds"] = time.perf_counter() - started
        results["meta"]["load_after"] = _load_average()
    _write_report(results, output)
    return 0


def _scale_row(passages: int) -> dict[str, Any]:
    from bot.bench.scale import measure_scale

    print(f"scale: {passages:,} synthetic vectors …", flush=True)
    row = {**asdict(measure_scale(passages)), "date": dt.date.today().isoformat()}
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


def _load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    return "?"


# -- the full run ----------------------------------------------------------------------------------


def _run_all(settings: EngineSettings, plan: Plan, scale: int) -> Results | None:
    from bot.bench.inputs import load_question_sets, small_knowledge
    from bot.bench.machine import describe_machine
    from bot.bench.systems import open_systems

    results: Results = {
        "meta": {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "quick": plan.quick,
                 "load_before": _load_average()},
        "machine": describe_machine(),
    }
    with _workspace() as root:
        if plan.quick:
            settings = settings.model_copy(update={"knowledge_dir": small_knowledge(settings.knowledge_dir, root)})
        knowledge = _knowledge(settings)
        if knowledge is None:
            return None
        sets = load_question_sets(knowledge, limit=plan.question_limit, latency_limit=plan.latency_questions)
        results["meta"] |= {"passages": len(knowledge), "topics": len(knowledge.topics),
                            "holdout": len(sets.holdout), "tuning": len(sets.tuning),
                            "latency_questions": len(sets.latency), "dropped_questions": sets.dropped}
        with _stage("opening the engines and baselines (the first run exports the ONNX model)"):
            systems = open_systems(settings, root)
        try:
            results["st_onnx_problem"] = systems.st_onnx_problem
            with _stage(f"answer quality on {len(sets.holdout)} holdout questions"):
                results["quality"] = _quality(systems, sets, knowledge)
            with _stage(f"warm latency ({len(sets.latency)} questions × {plan.latency_runs} runs)"):
                results["latency"], results["_samples"] = _latency(systems, sets.latency, plan)
            with _stage("throughput through answer_async"):
                results["throughput"], results["dedupe"] = _throughput(systems, sets.latency, plan)
            with _stage(f"storage: recording on vs off, {plan.storage_writes:,} feedback writes under load"):
                results["storage"] = _storage(systems, sets.latency, plan)
            with _stage(f"index builds on a {plan.kb_size}-passage synthetic knowledge base"):
                results["builds"] = _builds(systems, knowledge, plan)
            with _stage(f"cold starts ({plan.cold_runs} round(s), the kinds of process taking turns)"):
                results["cold_start"] = _cold_starts(settings, systems, root, plan)
        finally:
            systems.close()
    results["scale"] = {str(scale): _scale_row(scale)}
    return results


@contextlib.contextmanager
def _stage(title: str) -> Iterator[None]:
    """Print what runs and how long it took: a full run takes minutes."""
    print(f"{title} …", flush=True)
    started = time.perf_counter()
    yield
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)


def _knowledge(settings: EngineSettings) -> KnowledgeBase | None:
    from bot.core.knowledge import load_knowledge

    loaded = load_knowledge(settings.knowledge_dir)
    if loaded.knowledge is None:
        for error in loaded.errors:
            print(f"error: {error}", file=sys.stderr)
    return loaded.knowledge


@contextlib.contextmanager
def _workspace() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="spacebot-bench-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _quality(systems: Systems, sets: QuestionSets, knowledge: KnowledgeBase) -> list[dict[str, Any]]:
    from bot.bench.quality import baseline_row, engine_row

    fit = {"tuning": sets.tuning, "holdout": sets.holdout, "knowledge": knowledge}
    rows = [
        engine_row(f"engine ({systems.onnx_kind})", systems.onnx, sets.holdout, knowledge),
        engine_row("engine (torch)", systems.torch, sets.holdout, knowledge),
        baseline_row("naive (ST torch + exact FAISS)", systems.naive.rank_many, **fit),
    ]
    if systems.st_onnx is not None:
        rows.append(baseline_row(f"ST ONNX backend ({systems.onnx_kind.removeprefix('onnx-')}) + exact FAISS",
                                 systems.st_onnx.rank_many, **fit))
    rows.append(baseline_row("BM25 (bm25s)", systems.bm25.rank_many, **fit))
    return [asdict(row) for row in rows]


def _latency(systems: Systems, texts: list[str], plan: Plan) -> tuple[dict[str, Any], dict[str, list[float]]]:
    from bot.bench.latency import cache_hit_latency, one_torch_thread, time_interleaved

    calls = {"naive": systems.naive.rank, "naive-1-thread": systems.naive.rank, "bm25": systems.bm25.rank,
             "engine-torch": systems.torch.answer, "engine-onnx": systems.onnx.answer}
    if systems.st_onnx is not None:
        calls["st-onnx"] = systems.st_onnx.rank
    measured = time_interleaved(calls, texts, runs=plan.latency_runs, setups={"naive-1-thread": one_torch_thread})
    measured["cache-hit"] = cache_hit_latency(systems.cached, texts[0], repeats=plan.cache_repeats)
    order = [key for key in LATENCY_KEYS if key in measured]
    table = {
        key: {"p50": measured[key].p50, "p99": measured[key].p99, "mean": measured[key].mean,
              "count": len(measured[key].samples_ms)}
        for key in order
    }
    return table, {LATENCY_KEYS[key]: list(measured[key].samples_ms) for key in order}


def _throughput(systems: Systems, texts: list[str], plan: Plan) -> tuple[list[dict[str, Any]], dict[str, int]]:
    from bot.bench.latency import concurrent_throughput, dedupe_encoder_calls

    batch = texts * plan.throughput_rounds
    concurrent_throughput(systems.onnx, systems.counter, texts[:16], 8)  # warm the batcher and the threads
    rows = []
    for level in CONCURRENCY_LEVELS:
        result = concurrent_throughput(systems.onnx, systems.counter, batch, level)
        rows.append({**asdict(result), "per_second": result.per_second})
    calls = dedupe_encoder_calls(systems.onnx, systems.counter, DEDUPE_QUESTION, DEDUPE_COPIES)
    return rows, {"copies": DEDUPE_COPIES, "encoder_calls": calls}


def _storage(systems: Systems, texts: list[str], plan: Plan) -> dict[str, Any]:
    from bot.bench.storage_load import StoragePlan, measure_storage_load

    storage_plan = StoragePlan(runs=plan.storage_runs, writes=plan.storage_writes, concurrency=CONCURRENCY_LEVELS[-1])
    return measure_storage_load(systems.onnx, texts, storage_plan)


def _builds(systems: Systems, knowledge: KnowledgeBase, plan: Plan) -> dict[str, Any]:
    from bot.bench.builds import measure_builds

    times = measure_builds(knowledge, systems.counter.inner, size=plan.kb_size, incremental_runs=plan.incremental_runs)
    return {**asdict(times), "ratio": times.ratio, "encoder": systems.counter.kind}


def _cold_starts(settings: EngineSettings, systems: Systems, root: Path, plan: Plan) -> dict[str, Any]:
    from bot.bench.coldstart import measure_cold_starts

    children = _cold_children(settings, systems, root, with_st_onnx=plan.st_onnx_cold)
    if plan.cold_warmup:  # the same file cache for every child: each runs once untimed
        measure_cold_starts(children, runs=1, cwd=root)
    runs = measure_cold_starts(children, runs=plan.cold_runs, cwd=root)
    return {name: {**asdict(run), "median_seconds": run.median_seconds, "peak_mib": run.peak_mib}
            for name, run in runs.items()}


def _cold_children(
    settings: EngineSettings, systems: Systems, root: Path, *, with_st_onnx: bool
) -> list[Child]:
    from bot.bench.coldstart import ASK_SCRIPT, NAIVE_SCRIPT, Child, save_naive_index

    engine_env = {
        "SPACEBOT_INDEX_DIR": str(systems.onnx_settings.index_dir),
        "SPACEBOT_KNOWLEDGE_DIR": str(settings.knowledge_dir.resolve()),
        "SPACEBOT_EMBEDDING_MODEL": settings.embedding_model,
        "SPACEBOT_ENCODER": "onnx", "SPACEBOT_ONNX_QUANTIZE": str(settings.onnx_quantize).lower(),
        "SPACEBOT_LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1",
    }
    if settings.judge_model is not None:
        engine_env["SPACEBOT_JUDGE_MODEL"] = str(settings.judge_model.resolve())
    naive_files = save_naive_index(root / "naive-index", systems.naive.ids, systems.naive.passage_vectors)
    children = [
        Child("spacebot-ask", ASK_SCRIPT, (COLD_QUESTION,), tuple(engine_env.items())),
        Child("naive", NAIVE_SCRIPT, (systems.model_location, "torch", *map(str, naive_files), COLD_QUESTION),
              (("HF_HUB_OFFLINE", "1"),)),
    ]
    if with_st_onnx and systems.st_onnx is not None:
        st_files = save_naive_index(root / "st-onnx-index", systems.st_onnx.ids, systems.st_onnx.passage_vectors)
        children.append(Child("st-onnx", NAIVE_SCRIPT, (str(systems.st_onnx_folder), "onnx", *map(str, st_files),
                                                        COLD_QUESTION), (("HF_HUB_OFFLINE", "1"),)))
    return children
