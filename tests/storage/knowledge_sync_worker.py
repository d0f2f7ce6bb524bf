"""One bot process without Discord, for the two-process test (tests/storage/test_knowledge_sync_processes.py).

``python -m tests.storage.knowledge_sync_worker ROLE NAME BASE DATABASE_URL CONTROL`` opens the real
engine (the bundled model on torch, no answer cache) on ``BASE/knowledge`` with its own index in
``BASE/index``, and the knowledge sync on the database, as ``spacebot run`` does: listening for
publications, and checking and writing its heartbeat every 30 s. When it listens it creates
``CONTROL/ready-NAME``; it stops when ``CONTROL/stop`` appears.

* ``asker`` asks questions back to back and appends one JSON line per answer to
  ``CONTROL/answers-NAME.jsonl``: time, ``kb_version``, answered, whether the reworded text was in it,
  or the error.
* ``publisher`` waits for ``CONTROL/go``, rewords one passage in its knowledge folder, reloads and
  publishes (what ``/kb reload`` does), and writes ``CONTROL/published.json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from bot.core.config import EngineSettings
from bot.core.engine import Engine
from bot.storage import Storage, StorageSettings
from bot.storage.knowledge_sync import KnowledgeSync
from tests.support.kb import STORYLINE_FILE, mini_documents, passage, write_documents

REWORDED_PASSAGE = "mini-iss-2023-04-through-2028"
REWORDED_TEXT = ("In April 2023 Roscosmos told its partners that Russia would stay on the ISS through 2028. "
                 "NASA confirmed the extension the same week in a statement from Houston.")
MARKER = "statement from Houston"
QUESTIONS = ("When is Russia leaving the ISS?", "Until when will Russia stay on the ISS?",
             "Did Russia extend its ISS participation?")
CHECK_EVERY_SECONDS = 30.0  # the Discord cog's heartbeat interval: notifications, not this, must be fast
STARTUP_SECONDS = 120.0
PAUSE_SECONDS = 0.01


def reword(knowledge: Path) -> None:
    documents = mini_documents()
    passage(documents, REWORDED_PASSAGE)["text"] = REWORDED_TEXT
    write_documents(knowledge, {STORYLINE_FILE: documents[STORYLINE_FILE]})


async def ask_until_stopped(engine: Engine, control: Path, name: str) -> None:
    with (control / f"answers-{name}.jsonl").open("a", encoding="utf-8") as out:
        number = 0
        while not (control / "stop").exists():
            question = QUESTIONS[number % len(QUESTIONS)]
            record: dict[str, Any] = {"question": question}
            try:
                answer = await engine.answer_async(question)
                record |= {"kb_version": answer.kb_version, "answered": answer.answered,
                           "new_text": MARKER in answer.lead or any(MARKER in r.passage.text for r in answer.passages)}
            except Exception as exc:  # the test fails on any: it must see them all
                record["error"] = repr(exc)
            record["t"] = time.time()
            out.write(json.dumps(record) + "\n")
            out.flush()
            number += 1
            await asyncio.sleep(PAUSE_SECONDS)


async def file_appears(path: Path, every: float = 0.01) -> None:
    for _ in iter(path.exists, True):
        await asyncio.sleep(every)


async def publish_when_told(engine: Engine, sync: KnowledgeSync, control: Path) -> None:
    await file_appears(control / "go")
    old_version = engine.snapshot.version
    reword(engine.settings.knowledge_dir)
    requested = time.time()
    report = await sync.reload_and_publish(engine, actor="moderator")
    result = {"requested": requested, "done": time.time(), "ok": report.ok, "old": old_version,
              "new": report.kb_version}
    (control / "published.json").write_text(json.dumps(result), encoding="utf-8")
    await file_appears(control / "stop", 0.05)


async def check_periodically(sync: KnowledgeSync, shard: int) -> None:
    while True:
        await sync.catch_up()
        await sync.beat([shard])
        await asyncio.sleep(CHECK_EVERY_SECONDS)


async def main(role: str, name: str, base: Path, url: str, control: Path) -> None:
    settings = EngineSettings(_env_file=None, knowledge_dir=base / "knowledge", index_dir=base / "index",  # type: ignore[call-arg]
                              encoder="torch", cache_size=0)
    engine = await asyncio.to_thread(Engine.open, settings)
    storage = Storage(StorageSettings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    sync = KnowledgeSync(storage, lambda: engine, process_id=name)
    sync.start()
    assert sync.listener is not None
    await asyncio.wait_for(sync.listener.connected.wait(), STARTUP_SECONDS)
    checks = asyncio.create_task(check_periodically(sync, 0 if role == "publisher" else 1))
    (control / f"ready-{name}").touch()
    try:
        if role == "asker":
            await ask_until_stopped(engine, control, name)
        else:
            await publish_when_told(engine, sync, control)
    finally:
        checks.cancel()
        await sync.stop()
        await storage.close()
        engine.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    role_arg, name_arg, base_arg, url_arg, control_arg = sys.argv[1:6]
    asyncio.run(main(role_arg, name_arg, Path(base_arg), url_arg, Path(control_arg)))
