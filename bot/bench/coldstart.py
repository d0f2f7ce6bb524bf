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

ASK_SCRIPT = textwrap.dedent(
    """
    import sys
    from bot.cli import main
    code = main(["ask", *sys.argv[1:]])
    """
) + _PEAK_RSS_TAIL + "sys.exit(code)\n"

NAIVE_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(sys.argv[1], device="cpu")
    vector = model.encode([sys.argv[2]], normalize_embeddings=True, show_progress_bar=False)
    print(vector.shape)
    """
) + _PEAK_RSS_TAIL


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


def measure_cold_starts(
    name: str, script: str, args: list[str], *, runs: int, env: dict[str, str] | None = None, cwd: Path | None = None
) -> ColdStart:
    child_env = {**os.environ, **(env or {})}
    samples = [run_child(script, args, child_env, cwd or Path.cwd()) for _ in range(runs)]
    log.info("%s cold start: %s", name, ", ".join(f"{s:.2f}s" for s, _ in samples))
    return ColdStart(name, tuple(s for s, _ in samples), tuple(m for _, m in samples))
