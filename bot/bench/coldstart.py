"""Cold start and peak memory: a new process from launch to a printed answer, several runs, median."""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Each child reports its own peak resident set size on its last stderr line. VmHWM, not ru_maxrss: Linux
# carries ru_maxrss over from the forking parent (the benchmark, with models loaded), VmHWM starts afresh
# with the new program's address space.
_PEAK_RSS_TAIL = textwrap.dedent(
    """
    import sys as _sys
    _sys.stdout.flush()
    with open("/proc/self/status", encoding="utf-8") as _status:
        _kib = next((int(_l.split()[1]) for _l in _status if _l.startswith("VmHWM:")), 0)
    print(f"BENCH-PEAK-RSS {_kib}", file=_sys.stderr)
    """
)

# `spacebot ask ...` as the console script runs it: ``main()`` reads the command line itself.
ASK_SCRIPT = textwrap.dedent(
    """
    import sys
    from bot.cli import main
    sys.argv = ["spacebot", "ask", *sys.argv[1:]]
    code = main()
    """
) + _PEAK_RSS_TAIL + "sys.exit(code)\n"

# The naive pipeline with a warm index, as a fresh process: load the model (torch, or sentence-transformers'
# ONNX backend), read the saved passage vectors, build an exact FAISS index, encode the question, search.
NAIVE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_path, backend, vectors_path, ids_path, question = sys.argv[1:6]
    import faiss
    import numpy as np
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(model_path, backend=backend, device="cpu")
    vectors = np.load(vectors_path)
    ids = json.loads(open(ids_path, encoding="utf-8").read())
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    query = model.encode([question], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    scores, rows = index.search(np.ascontiguousarray(query, dtype=np.float32), 1)
    print(ids[int(rows[0][0])], float(scores[0][0]))
    """
) + _PEAK_RSS_TAIL


@dataclass(frozen=True)
class Child:
    """One kind of process to start: a script, its arguments and the environment variables it adds."""

    name: str
    script: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ColdStart:
    name: str
    seconds: tuple[float, ...]
    peak_rss_mib: tuple[float, ...]

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak_mib(self) -> float:
        return max(self.peak_rss_mib)


def save_naive_index(folder: Path, ids: list[str], vectors: np.ndarray) -> tuple[Path, Path]:
    """What the naive pipeline keeps between runs: the passage vectors and their ids."""
    folder.mkdir(parents=True, exist_ok=True)
    vectors_path, ids_path = folder / "vectors.npy", folder / "ids.json"
    np.save(vectors_path, np.ascontiguousarray(vectors, dtype=np.float32))
    ids_path.write_text(json.dumps(ids), encoding="utf-8")
    return vectors_path, ids_path


def run_child(script: str, args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Seconds from launch to exit, and the child's peak RSS in MiB."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                            cwd=cwd, timeout=600, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"cold-start child failed ({result.returncode}): {result.stderr[-2000:]}")
    peak_kib = next(
        (json.loads(line.split(" ", 1)[1]) for line in reversed(result.stderr.splitlines())
         if line.startswith("BENCH-PEAK-RSS ")),
        0,
    )
    return seconds, peak_kib / 1024


def measure_cold_starts(children: list[Child], *, runs: int, cwd: Path) -> dict[str, ColdStart]:
    """``runs`` rounds, each starting every child once in turn, so a change in the machine's load during
    the measurement touches every child alike."""
    samples: dict[str, list[tuple[float, float]]] = {child.name: [] for child in children}
    for _ in range(runs):
        for child in children:
            env = {**os.environ, **dict(child.env)}
            samples[child.name].append(run_child(child.script, list(child.args), env, cwd))
    for name, runs_of_child in samples.items():
        log.info("%s cold start: %s", name, ", ".join(f"{s:.2f}s" for s, _ in runs_of_child))
    return {
        name: ColdStart(name, tuple(s for s, _ in got), tuple(m for _, m in got)) for name, got in samples.items()
    }
