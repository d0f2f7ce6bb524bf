"""``spacebot bench``'s storage section, small: every feedback write issued under load is stored.

Correctness only (no timing is asserted): the same code as the full run, with 50 writes and 8
questions in flight, on SQLite and (with SPACEBOT_TEST_DATABASE_URL) PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bot.bench.storage_load import (
    DATABASE_ENV,
    PairedDifference,
    StoragePlan,
    measure_storage_load,
    render_storage_section,
    storage_targets,
    within_noise,
)
from bot.core.engine import Engine
from bot.storage import VOTE_KINDS, Storage
from tests.conftest import make_settings
from tests.storage.support import storage_settings
from tests.support.fake_encoder import FakeEncoder

QUESTIONS = [
    "What is the International Lunar Research Station?",
    "Who leads the ILRS?",
    "thanks!",
    "Who won the 2018 World Cup?",
]
# The fake encoder answers in a millisecond, so recorded askers would queue thousands of counts for the
# writer to catch up on: the recording is checked in the on/off comparison instead.
SMALL = StoragePlan(runs=1, writes=50, concurrency=8, write_concurrency=4, record_answers=False)


@pytest.fixture
def uncached_engine(mini_kb_dir: Path, fake_encoder: FakeEncoder, tmp_path: Path) -> Iterator[Engine]:
    """The mini knowledge base with the answer cache off, as the bench runs the engine: every question
    is computed, so the askers take turns with the writes instead of spinning on cache hits."""
    engine = Engine.open(make_settings(tmp_path, knowledge_dir=mini_kb_dir, cache_size=0), fake_encoder)
    yield engine
    engine.close()


async def test_storage_bench_stores_every_feedback_write_issued_while_questions_run(
    uncached_engine: Engine, database_url: str
) -> None:
    results = await _measure(uncached_engine, database_url)

    writes = results["writes"]
    assert (writes["writes_issued"], writes["writes_stored"], writes["writes_raised"], writes["lost"]) == (50, 50, 0, 0)
    assert writes["questions"]["count"] >= SMALL.concurrency and writes["seconds"] > 0
    assert (writes["recorder_queued"], writes["recorder_lost"]) == (0, 0)
    overhead = results["overhead"]
    assert overhead["off"]["count"] == overhead["on"]["count"] == len(QUESTIONS) * SMALL.runs
    assert overhead["writes_queued"] >= 1  # the questions' counts (added up while a write is pending)
    assert overhead["writes_written"] == overhead["writes_queued"] and overhead["writes_failed"] == 0
    async with Storage(storage_settings(database_url)) as storage:  # the bench's votes are deleted after counting
        assert await storage.count_feedback(status=None, kinds=VOTE_KINDS) == 0


async def test_storage_bench_section_and_targets_report_the_counts(uncached_engine: Engine, database_url: str) -> None:
    results = {"storage": await _measure(uncached_engine, database_url)}

    section = "\n".join(render_storage_section(results))
    [_, writes_target] = storage_targets(results)
    lost = {"storage": {**results["storage"], "writes": {**results["storage"]["writes"], "writes_stored": 49,
                                                         "lost": 1}}}

    assert section.startswith("## Storage under load") and "\n| 50 | 50 | 0 | " in section
    assert writes_target[1:] == ("50 of 50", "no lost write", True)
    assert storage_targets(lost)[1][1:] == ("49 of 50", "no lost write", False)
    assert [target[3] for target in storage_targets({})] == [None, None]


async def _measure(engine: Engine, database_url: str) -> dict[str, Any]:
    return await asyncio.to_thread(measure_storage_load, engine, QUESTIONS, SMALL, database_url=database_url)


@pytest.fixture(autouse=True)
def _no_bench_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_ENV, raising=False)


def test_recording_overhead_passes_only_when_the_paired_difference_is_noise_or_small() -> None:
    off = [10.0, 12.0, 9.0, 11.0] * 25
    jitter = [0.4, -0.4, 0.2, -0.2] * 25

    def overhead(on: list[float]) -> dict[str, Any]:
        return {"off": {"p50": 10.5}, "difference": asdict(PairedDifference.of(on, off))}

    noise = overhead([o + j for o, j in zip(off, jitter, strict=True)])
    small = overhead([o + 0.5 for o in off])
    slower = overhead([o + 3.0 for o in off])

    assert noise["difference"]["low"] <= 0 <= noise["difference"]["high"] and within_noise(noise)
    assert small["difference"]["low"] > 0 and within_noise(small)  # measurable, but 0.5 ms of 10.5
    assert slower["difference"]["median"] == 3.0 and not within_noise(slower)
