"""A first ``spacebot ask`` on a new machine prints the answer, not the libraries' chatter.

Slow (one ONNX export and one index build into a fresh folder, about 30 s): one test per suite.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.embedding import progress_wanted
from tests.conftest import REPO, SHIPPED_KNOWLEDGE

QUESTION = "When is Russia leaving the ISS?"
SPACEBOT = Path(sys.executable).with_name("spacebot")  # the installed console script
# What used to reach stderr: transformers' deprecation note during the export, the index build's
# progress bar, and FAISS's loader probing for AVX512/AVX2 builds (INFO, so at -v and in `spacebot run`).
NOISE = {
    "transformers deprecation": re.compile(r"deprecated", re.IGNORECASE),
    "progress bar": re.compile(r"\d+%\|"),
    "faiss loader": re.compile(r"ModuleNotFoundError|faiss\.loader|Loading faiss"),
    "python warning": re.compile(r"\w+Warning:"),
}


def _spacebot(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPACEBOT_")}
    command = [str(SPACEBOT)] if SPACEBOT.is_file() else [sys.executable, "-m", "bot.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600,
                          check=False)


def _noise(stderr: str) -> dict[str, list[str]]:
    lines = stderr.replace("\r", "\n").splitlines()
    found = {name: [line for line in lines if pattern.search(line)] for name, pattern in NOISE.items()}
    return {name: hits for name, hits in found.items() if hits}


def _foreign_lines(stderr: str) -> list[str]:
    """Lines that are not one of our own log records (``<date> <time> LEVEL bot.<module>: ...``)."""
    own = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) bot\.[\w.]+: ")
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and not own.match(line)]


def test_first_ask_with_a_fresh_index_prints_no_library_noise_even_at_verbose(tmp_path: Path) -> None:
    index = str(tmp_path / "index")
    first = _spacebot("--knowledge", str(SHIPPED_KNOWLEDGE), "--index", index, "ask", QUESTION)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Russia" in first.stdout
    assert (tmp_path / "index" / "onnx").is_dir()  # it did export, on this very run
    assert _noise(first.stderr) == {}, first.stderr[-3000:]
    assert _foreign_lines(first.stderr) == [], first.stderr[-3000:]  # our own warnings may show; nothing else

    verbose = _spacebot("--knowledge", str(SHIPPED_KNOWLEDGE), "--index", index, "-v", "ask", QUESTION)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert _noise(verbose.stderr) == {}, verbose.stderr[-3000:]


def test_progress_bars_are_drawn_only_when_logging_is_at_info_or_finer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.core.embedding")
    assert not progress_wanted(True)
    caplog.set_level(logging.INFO, logger="bot.core.embedding")
    assert progress_wanted(True)
    assert not progress_wanted(False)
