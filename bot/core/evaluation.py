"""The question set and its metrics: hit@1, hit@3, MRR, abstention precision and recall."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.core.models import Answer


@dataclass(frozen=True)
class Question:
    text: str
    expect: tuple[str, ...] = ()
    latest: str | None = None
    source: str = ""

    @property
    def out_of_scope(self) -> bool:
        return not self.expect


@dataclass
class Miss:
    question: Question
    got: list[str]
    reason: str


@dataclass
class EvalReport:
    in_scope: int = 0
    out_of_scope: int = 0
    hits_at_1: int = 0
    hits_at_3: int = 0
    reciprocal_ranks: float = 0.0
    latest_total: int = 0
    latest_correct: int = 0
    declined_correctly: int = 0
    declined_wrongly: int = 0
    misses: list[Miss] = field(default_factory=list)

    @property
    def hit_at_1(self) -> float:
        return self.hits_at_1 / self.in_scope if self.in_scope else 0.0

    @property
    def hit_at_3(self) -> float:
        return self.hits_at_3 / self.in_scope if self.in_scope else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.in_scope if self.in_scope else 0.0

    @property
    def abstention_recall(self) -> float:
        """Share of out-of-scope questions that were declined."""
        return self.declined_correctly / self.out_of_scope if self.out_of_scope else 1.0

    @property
    def abstention_precision(self) -> float:
        """Share of declined questions that really were out of scope."""
        declined = self.declined_correctly + self.declined_wrongly
        return self.declined_correctly / declined if declined else 1.0

    @property
    def latest_accuracy(self) -> float:
        return self.latest_correct / self.latest_total if self.latest_total else 1.0

    def summary_lines(self) -> list[str]:
        return [
            f"questions: {self.in_scope} in scope, {self.out_of_scope} out of scope",
            f"hit@1: {self.hit_at_1:.3f}   hit@3: {self.hit_at_3:.3f}   MRR: {self.mrr:.3f}",
            f"leads with the latest position: {self.latest_correct}/{self.latest_total}",
            f"abstention precision: {self.abstention_precision:.3f}   recall: {self.abstention_recall:.3f}",
        ]


def load_questions(path: Path) -> list[Question]:
    """Questions from one YAML file, or from every ``*.yaml`` file in a folder."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    questions: list[Question] = []
    for file in files:
        document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for entry in document.get("questions", []):
            if entry.get("out_of_scope"):
                questions.append(Question(str(entry["q"]), source=file.name))
            else:
                questions.append(Question(
                    str(entry["q"]), tuple(entry["expect"]), entry.get("latest"), source=file.name,
                ))
    return questions


def evaluate(questions: Sequence[Question], answer: Callable[[Sequence[str]], list[Answer]]) -> EvalReport:
    """Score a question set; ``answer`` takes a batch of questions and returns their answers."""
    report = EvalReport()
    answers = answer([q.text for q in questions])
    for question, result in zip(questions, answers, strict=True):
        ranked = [r.passage.id for r in result.passages] if result.answered else []
        if question.out_of_scope:
            report.out_of_scope += 1
            if result.answered:
                report.misses.append(Miss(question, ranked[:3], "answered an out-of-scope question"))
            else:
                report.declined_correctly += 1
            continue
        report.in_scope += 1
        if not result.answered:
            report.declined_wrongly += 1
        rank = next((i for i, pid in enumerate(ranked, 1) if pid in question.expect), None)
        if rank is not None:
            report.reciprocal_ranks += 1 / rank
            report.hits_at_1 += rank == 1
            report.hits_at_3 += rank <= 3
        if rank is None or rank > 3:
            reason = "declined" if not result.answered else "expected passage not in the top 3"
            report.misses.append(Miss(question, ranked[:3], reason))
        if question.latest:
            report.latest_total += 1
            if ranked[:1] == [question.latest]:
                report.latest_correct += 1
            elif rank is not None and rank <= 3:
                report.misses.append(Miss(question, ranked[:3], f"did not lead with the latest ({question.latest})"))
    return report
