"""A snapshot: everything one question needs (knowledge, index, retriever, judge evidence), immutable."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from bot.core.embedding import Encoder
from bot.core.judge import Evidence, JudgeModel
from bot.core.knowledge import KnowledgeBase
from bot.core.models import BuildReport
from bot.core.prototypes import Prototypes
from bot.core.retrieval import Retriever
from bot.core.store import StoredIndex
from bot.core.storylines import Storylines


@dataclass(frozen=True)
class Snapshot:
    stored: StoredIndex
    retriever: Retriever
    storylines: Storylines
    evidence: Evidence
    judge_model: JudgeModel
    loaded_at: dt.datetime

    @classmethod
    def build(
        cls, stored: StoredIndex, encoder: Encoder, judge_model: JudgeModel, *,
        dictionary: frozenset[str] = frozenset(), cache_dir: Path | None = None,
    ) -> Snapshot:
        knowledge = stored.knowledge
        retriever = Retriever(knowledge, stored.vectors, stored.ids, dictionary)
        prototypes = Prototypes.build(knowledge, encoder, cache_dir, judge_model.examples, retriever.vector_of)
        return cls(
            stored=stored,
            retriever=retriever,
            storylines=Storylines(knowledge.passages),
            evidence=Evidence(retriever.lexical, prototypes),
            judge_model=judge_model,
            loaded_at=dt.datetime.now(dt.UTC),
        )

    @property
    def knowledge(self) -> KnowledgeBase:
        return self.stored.knowledge

    @property
    def version(self) -> str:
        return self.knowledge.version


def knowledge_diff(old: KnowledgeBase, new: KnowledgeBase, build: BuildReport) -> BuildReport:
    """What changed between two knowledge bases, when the index itself was reused as it stood."""
    added = tuple(pid for pid in new.passages if pid not in old.passages)
    removed = tuple(pid for pid in old.passages if pid not in new.passages)
    changed = tuple(
        pid for pid in new.passages
        if pid in old.passages and old.passages[pid].to_dict() != new.passages[pid].to_dict()
    )
    return replace(build, added=added, removed=removed, changed=changed)
