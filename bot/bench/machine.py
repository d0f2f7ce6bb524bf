"""What the benchmark ran on: CPU, cores, memory, Python and the versions of the libraries that matter."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "torch", "sentence-transformers", "transformers", "optimum", "optimum-onnx", "onnxruntime", "tokenizers",
    "faiss-cpu", "numpy", "bm25s", "rapidfuzz",
)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def total_memory_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    return 0.0


def cpu_flags_of_note() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f in flags) or "-"
    return "-"


def describe_machine() -> dict[str, str]:
    """Plain strings, ready for the report's machine table."""
    versions = []
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    return {
        "CPU": cpu_model(),
        "cores": str(os.cpu_count() or "?"),
        "CPU features": cpu_flags_of_note(),
        "RAM": f"{total_memory_gib():.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "libraries": ", ".join(versions),
    }
