"""Processes sharing one ``index/``: one builds, the others wait and load it; no POSIX-only import.

Issue 9, defect 5 (three processes starting together each embedded everything) and the ``fcntl``
import that made the engine unimportable on Windows. Real subprocesses, bounded in time.

Run as ``python -m tests.test_store_processes KNOWLEDGE INDEX COUNTS READY GO RESULT`` it is one
worker: it signals ``READY``, waits for ``GO``, opens the store with an encoder that is slow and
appends one line per encode call to ``COUNTS``, and writes what it opened to ``RESULT``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.support.fake_encoder import FakeEncoder
from tests.support.kb import mini_documents, write_documents

REPO = Path(__file__).resolve().parents[1]
WORKERS = 3
# Long enough that every worker reaches the store while the first is still embedding (so an unlocked
# load-or-build embeds once per worker), short enough to keep the test quick.
ENCODE_SECONDS = 1.5
DEADLINE_SECONDS = 90.0


class _SlowFileCountingEncoder(FakeEncoder):
    """The fake encoder, slow, appending one line per encode call to a file shared by the workers."""

    def __init__(self, counts_file: Path) -> None:
        super().__init__()
        self._counts_file = counts_file

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        with self._counts_file.open("a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {len(texts)}\n")
        time.sleep(ENCODE_SECONDS)
        return super().encode(texts, batch_size=batch_size, progress=progress)


def _wait_for(path: Path, deadline: float) -> None:
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} never appeared")
        time.sleep(0.01)


def _worker(arguments: Sequence[str]) -> None:
    from bot.core.knowledge import load_knowledge
    from bot.core.store import open_or_build

    knowledge_dir, index_dir, counts, ready, go, result = map(Path, arguments)
    knowledge = load_knowledge(knowledge_dir).knowledge
    assert knowledge is not None
    encoder = _SlowFileCountingEncoder(counts)
    ready.touch()
    _wait_for(go, time.monotonic() + DEADLINE_SECONDS)
    stored, report = open_or_build(knowledge, encoder, index_dir)
    result.write_text(json.dumps({"folder": stored.folder.name, "reused": report.reused}), encoding="utf-8")


def _start_worker(tmp_path: Path, number: int) -> subprocess.Popen[bytes]:
    paths = [tmp_path / "knowledge", tmp_path / "index", tmp_path / "counts",
             tmp_path / f"ready-{number}", tmp_path / "go", tmp_path / f"result-{number}.json"]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_store_processes", *map(str, paths)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def test_processes_starting_together_embed_once_and_all_load_the_same_snapshot(tmp_path: Path) -> None:
    write_documents(tmp_path / "knowledge", mini_documents())
    workers = [_start_worker(tmp_path, number) for number in range(WORKERS)]
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        for number in range(WORKERS):
            _wait_for(tmp_path / f"ready-{number}", deadline)
        (tmp_path / "go").touch()
        for worker in workers:
            _, stderr = worker.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert worker.returncode == 0, stderr.decode("utf-8", "replace")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    encode_calls = (tmp_path / "counts").read_text(encoding="utf-8").splitlines()
    assert len(encode_calls) == 1, f"every worker that embeds writes a line: {encode_calls}"
    assert encode_calls[0].split()[1] == "7"
    results = [json.loads((tmp_path / f"result-{n}.json").read_text(encoding="utf-8")) for n in range(WORKERS)]
    assert len({result["folder"] for result in results}) == 1, results
    assert sorted(result["reused"] for result in results) == [0, 7, 7]


def test_store_and_engine_import_and_lock_where_fcntl_does_not_exist(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['fcntl'] = None\n"  # what Windows has: no fcntl module
        "import bot.core.engine, bot.core.store\n"
        "from pathlib import Path\n"
        "from bot.core.files import exclusive_lock\n"
        f"with exclusive_lock(Path({str(tmp_path / 'build.lock')!r})):\n"
        "    print('locked')\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=DEADLINE_SECONDS, check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "locked"


if __name__ == "__main__":
    _worker(sys.argv[1:])
