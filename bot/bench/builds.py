"""Index build times on a synthetic knowledge base made by varying the real passages."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bot.core.embedding import Encoder
from bot.core.knowledge import KnowledgeBase
from bot.core.models import Passage, Topic
from bot.core.store import open_or_build


@dataclass(frozen=True)
class BuildTimes:
    passages: int
    full_seconds: float
    incremental_seconds: float
    incremental_runs: int
    embedded_on_incremental: int

    @property
    def ratio(self) -> float:
        return self.incremental_seconds / self.full_seconds if self.full_seconds else 0.0


def varied_text(text: str, copy: int) -> str:
    """The same facts in another sentence order, marked with the copy number, so each copy embeds differently."""
    sentences = [s.strip() for s in text.replace("\n", " ").split(". ") if s.strip()]
    shift = copy % max(1, len(sentences))
    rotated = sentences[shift:] + sentences[:shift]
    return f"(Briefing {copy}) " + ". ".join(s.rstrip(".") for s in rotated) + "."


def synthetic_knowledge(base: KnowledgeBase, size: int) -> KnowledgeBase:
    """``size`` passages: the real ones first, then varied copies of them with new ids."""
    originals = list(base.passages.values())
    passages: dict[str, Passage] = {}
    for number in range(size):
        original = originals[number % len(originals)]
        copy = number // len(originals)
        if copy == 0:
            passages[original.id] = original
            continue
        new_id = f"{original.id}-copy{copy}"
        passages[new_id] = replace(
            original, id=new_id, title=f"{original.title} (briefing {copy})",
            text=varied_text(original.text, copy), supersedes=(),
        )
    topics = {
        slug: Topic(topic.slug, topic.title, topic.file, tuple(p.id for p in passages.values() if p.topic == slug))
        for slug, topic in base.topics.items()
    }
    return KnowledgeBase(topics, passages, base.examples, base.scope)


def with_one_passage_changed(knowledge: KnowledgeBase, run: int) -> KnowledgeBase:
    passages = dict(knowledge.passages)
    passage_id = list(passages)[(run * 37) % len(passages)]
    passages[passage_id] = replace(passages[passage_id], text=passages[passage_id].text + f" (Edited, revision {run}.)")
    return KnowledgeBase(knowledge.topics, passages, knowledge.examples, knowledge.scope)


def measure_builds(base: KnowledgeBase, encoder: Encoder, *, size: int, incremental_runs: int) -> BuildTimes:
    knowledge = synthetic_knowledge(base, size)
    with tempfile.TemporaryDirectory(prefix="spacebot-bench-build-") as folder:
        index_dir = Path(folder) / "index"
        started = time.perf_counter()
        open_or_build(knowledge, encoder, index_dir)
        full = time.perf_counter() - started
        incremental: list[float] = []
        embedded = 0
        for run in range(1, incremental_runs + 1):
            knowledge = with_one_passage_changed(knowledge, run)
            started = time.perf_counter()
            _, report = open_or_build(knowledge, encoder, index_dir)
            incremental.append(time.perf_counter() - started)
            embedded = len(report.added) + len(report.changed)
    return BuildTimes(len(knowledge), full, statistics.median(incremental), incremental_runs, embedded)
