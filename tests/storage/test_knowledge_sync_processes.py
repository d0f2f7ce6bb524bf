"""Two real processes on one PostgreSQL, each with its own knowledge and index folders (two machines):
a reload in one is served by the other within 5 s, and no question fails in between.

Each process is ``tests/storage/knowledge_sync_worker.py`` with the real model. Runs when
``SPACEBOT_TEST_DATABASE_URL`` is set (CI sets it), skips otherwise.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.storage import Storage
from tests.storage.conftest import PG_ENV, pg_server, throwaway_database
from tests.storage.knowledge_sync_worker import STARTUP_SECONDS
from tests.storage.support import storage_settings
from tests.support.kb import write_mini_kb

REPO = Path(__file__).resolve().parents[2]
SERVED_WITHIN_SECONDS = 5.0
LONGEST_SILENCE_SECONDS = 2.0  # between two answers while the other process reloads and this one swaps
EXIT_SECONDS = 60.0


@pytest.fixture
async def pg_url() -> Any:
    server = pg_server()
    if server is None:
        pytest.skip(f"{PG_ENV} is not set (bash tests/storage/pg_server.sh start DIR prints one)")
    async with throwaway_database(server) as url:
        async with Storage(storage_settings(url)):
            pass  # migrated before the workers start
        yield url


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[str, str, str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(role: str, name: str, url: str) -> subprocess.Popen[bytes]:
        base = tmp_path / name
        write_mini_kb(base / "knowledge")
        log = (tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.storage.knowledge_sync_worker", role, name, str(base), url,
             str(tmp_path / "control")],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        started.append(process)
        return process

    (tmp_path / "control").mkdir()
    yield start
    (tmp_path / "control" / "stop").touch()
    for process in started:
        try:
            process.wait(EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], bool], seconds: float, what: str, alive: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        dead = [p.args[4] for p in alive if p.poll() is not None]  # type: ignore[index]
        if dead or time.monotonic() > deadline:
            problem = f"worker(s) {dead} exited while waiting for {what}" if dead else f"no {what} in {seconds:.0f} s"
            pytest.fail(f"{problem}\n{worker_logs(alive)}")
        time.sleep(0.05)


def worker_logs(processes: list[subprocess.Popen[bytes]]) -> str:
    """The end of each worker's log, for a failure message."""
    logs = []
    for process in processes:
        name = str(process.args[4])  # type: ignore[index]
        path = Path(str(process.args[7])).parent / f"{name}.log"  # type: ignore[index]
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        logs.append(f"--- worker {name} ---\n{text[-3000:]}")
    return "\n".join(logs)


def answers(control: Path, name: str) -> list[dict[str, Any]]:
    path = control / f"answers-{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]


async def test_a_reload_in_one_process_is_served_by_the_other_within_5_s_with_no_failed_question(
    pg_url: str, workers: Callable[[str, str, str], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    control = tmp_path / "control"
    running = [workers("publisher", "a", pg_url), workers("asker", "b", pg_url)]
    wait_for(lambda: all((control / f"ready-{n}").exists() for n in "ab"), 2 * STARTUP_SECONDS + 60,
             "ready workers", running)
    wait_for(lambda: len(answers(control, "b")) >= 20, 30, "answers from b", running)

    (control / "go").touch()
    wait_for((control / "published.json").exists, 30, "publication by a", running)
    published = json.loads((control / "published.json").read_text(encoding="utf-8"))
    assert published["ok"] and published["new"] != published["old"]
    new, old = published["new"], published["old"]
    wait_for(lambda: any(a.get("kb_version") == new for a in answers(control, "b")), 30, "new version served by b",
             running)
    wait_for(lambda: sum(a.get("kb_version") == new for a in answers(control, "b")) >= 10, 30,
             "more answers from b", running)
    async with Storage(storage_settings(pg_url)) as storage:
        beats = {beat.process_id: beat for beat in await storage.list_heartbeats()}
    (control / "stop").touch()
    for process in running:
        assert process.wait(EXIT_SECONDS) == 0, worker_logs([process])

    asked = answers(control, "b")
    assert [a for a in asked if "error" in a] == []
    assert all(a["answered"] for a in asked), [a for a in asked if not a["answered"]]
    versions = [a["kb_version"] for a in asked]
    switch = versions.index(new)
    assert set(versions[:switch]) == {old} and set(versions[switch:]) == {new}  # one swap, never back
    delay = asked[switch]["t"] - published["requested"]
    assert delay <= SERVED_WITHIN_SECONDS, f"b served {new} {delay:.2f} s after the reload was requested"
    assert all(a["new_text"] for a in asked[switch:] if a["question"].startswith("When is Russia"))
    assert not any(a["new_text"] for a in asked[:switch])
    window = [a["t"] for a in asked if published["requested"] - 1 <= a["t"] <= asked[switch]["t"] + 1]
    assert max(b - a for a, b in itertools.pairwise(window)) <= LONGEST_SILENCE_SECONDS
    assert (beats["a"].kb_version, beats["b"].kb_version) == (new, new)
    assert (beats["a"].shard_ids, beats["b"].shard_ids) == ((0,), (1,))
