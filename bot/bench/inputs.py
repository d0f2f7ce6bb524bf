"""What the benchmark runs on: the knowledge base and the question set (data, never ``tests/``).

Quality is scored on ``questions/holdout``; baselines' decline thresholds are fitted on
``questions/tuning``, and the latency runs ask the tuning questions' texts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.core.knowledge import KnowledgeBase
from bot.core.questions import HOLDOUT, TUNING, Question, load_questions, question_set

REPO_QUESTIONS = Path(__file__).resolve().parents[2] / "questions"


@dataclass(frozen=True)
class QuestionSets:
    holdout: list[Question]  # scored
    tuning: list[Question]  # baselines' thresholds are fitted on these
    latency: list[str]  # asked one at a time for the latency and throughput runs
    dropped: int  # questions left out because they expect passages the knowledge base lacks


def questions_root() -> Path:
    """``questions/`` in the working folder when there is one (as ``spacebot eval`` reads it), else the repository's."""
    local = Path("questions")
    return local if (local / HOLDOUT).is_dir() else REPO_QUESTIONS


def load_question_sets(knowledge: KnowledgeBase, *, limit: int | None, latency_limit: int | None,
                       root: Path | None = None) -> QuestionSets:
    """Both splits, keeping the questions the knowledge base can be scored on; ``limit`` caps each split."""
    root = root or questions_root()
    holdout, dropped_holdout = _usable(load_questions(question_set(root, HOLDOUT)), knowledge)
    tuning, dropped_tuning = _usable(load_questions(question_set(root, TUNING)), knowledge)
    latency = [q.text for q in tuning if not q.context]
    if limit:
        holdout, tuning = _sample(holdout, limit), _sample(tuning, limit)
    if latency_limit:
        latency = latency[:latency_limit]
    return QuestionSets(holdout, tuning, latency, dropped_holdout + dropped_tuning)


def _usable(questions: list[Question], knowledge: KnowledgeBase) -> tuple[list[Question], int]:
    kept = [q for q in questions if all(pid in knowledge.passages for pid in (*q.expect, *q.acceptable))]
    return kept, len(questions) - len(kept)


def _sample(questions: list[Question], limit: int) -> list[Question]:
    """About ``limit`` questions with every category represented: a round-robin over the categories."""
    groups: dict[str, list[Question]] = {}
    for question in questions:
        groups.setdefault(f"{question.category}/{bool(question.context)}", []).append(question)
    picked: list[Question] = []
    position = 0
    while len(picked) < limit and any(position < len(group) for group in groups.values()):
        picked += [group[position] for group in groups.values() if position < len(group)]
        position += 1
    return picked[:limit]


def small_knowledge(knowledge_dir: Path, root: Path, topics: int = 3) -> Path:
    """The quick run's knowledge base: the smallest few topic files (and the scope), copied to ``root``."""
    small = root / "knowledge"
    small.mkdir()
    for name in ("scope.md", "README.md"):
        if (knowledge_dir / name).is_file():
            shutil.copy(knowledge_dir / name, small / name)
    for path in sorted(knowledge_dir.glob("*.yaml"), key=lambda p: (p.stat().st_size, p.name))[:topics]:
        shutil.copy(path, small / path.name)
    return small
