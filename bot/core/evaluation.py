"""Scoring a question set, per category, with every miss named.

An expected passage counts as found when the answer shows it or a newer position that supersedes it
(the knowledge base grows; a question written against last year's head still has its answer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.core.knowledge import KnowledgeBase
from bot.core.models import Answer
from bot.core.questions import Question

AnswerMany = Callable[[Sequence[str], Sequence[Sequence[str]]], list[Answer]]


@dataclass
class Miss:
    question: Question
    got: list[str]
    reason: str

    def describe(self) -> str:
        expected = list(self.question.expect) or self.question.category
        where = f"[{self.question.source}] {self.question.text!r}"
        return f"miss {where}: {self.reason}; expected {expected}, got {self.got}"


@dataclass
class Tally:
    total: int = 0
    good: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.good += ok

    @property
    def rate(self) -> float:
        return self.good / self.total if self.total else 1.0

    def __str__(self) -> str:
        return f"{self.rate:.3f} ({self.good}/{self.total})"


@dataclass
class EvalReport:
    hit_at_1: Tally = field(default_factory=Tally)
    hit_at_3: Tally = field(default_factory=Tally)
    reciprocal_ranks: float = 0.0
    falsely_declined: Tally = field(default_factory=Tally)
    leads_with_latest: Tally = field(default_factory=Tally)
    out_of_scope_declined: Tally = field(default_factory=Tally)
    near_domain_declined: Tally = field(default_factory=Tally)
    out_of_scope_reason_right: Tally = field(default_factory=Tally)
    not_a_question_declined: Tally = field(default_factory=Tally)
    not_understood_declined: Tally = field(default_factory=Tally)
    premise_flagged: Tally = field(default_factory=Tally)
    premise_wrongly_flagged: Tally = field(default_factory=Tally)  # of in-scope questions whose premise holds
    uncovered_not_misanswered: Tally = field(default_factory=Tally)
    uncovered_reason_right: Tally = field(default_factory=Tally)
    definition_hit_at_1: Tally = field(default_factory=Tally)
    follow_up_hit_at_3: Tally = field(default_factory=Tally)
    standalone_unchanged: Tally = field(default_factory=Tally)
    misses: list[Miss] = field(default_factory=list)

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.hit_at_3.total if self.hit_at_3.total else 0.0

    def summary_lines(self) -> list[str]:
        return [
            f"in scope ({self.hit_at_3.total}): hit@1 {self.hit_at_1}  hit@3 {self.hit_at_3}  MRR {self.mrr:.3f}",
            f"  falsely declined {self.falsely_declined}  leads with the latest position {self.leads_with_latest}",
            f"out of scope declined {self.out_of_scope_declined}  near-domain {self.near_domain_declined}"
            f"  reason out_of_scope {self.out_of_scope_reason_right}",
            f"not a question declined {self.not_a_question_declined}"
            f"  follow-ups without context declined {self.not_understood_declined}",
            f"false premise flagged with the current position {self.premise_flagged}"
            f"  true premise wrongly flagged {self.premise_wrongly_flagged}",
            f"uncovered not mis-answered {self.uncovered_not_misanswered}"
            f"  reason not_covered {self.uncovered_reason_right}",
            f"definitions lead with the definition {self.definition_hit_at_1}",
            f"follow-ups hit@3 {self.follow_up_hit_at_3}"
            f"  standalone questions unchanged by their context {self.standalone_unchanged}",
        ]


class Expectations:
    """Expected ids widened to the newer positions that supersede them."""

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self._newer: dict[str, set[str]] = defaultdict(set)
        for passage in knowledge.passages.values():
            for earlier in passage.supersedes:
                self._newer[earlier].add(passage.id)

    def widen(self, ids: Sequence[str]) -> set[str]:
        found, frontier = set(ids), list(ids)
        while frontier:
            for newer in self._newer.get(frontier.pop(), ()):
                if newer not in found:
                    found.add(newer)
                    frontier.append(newer)
        return found


def evaluate(questions: Sequence[Question], answer_many: AnswerMany, knowledge: KnowledgeBase) -> EvalReport:
    """Score a question set; ``answer_many(texts, contexts)`` answers a batch of questions."""
    report = EvalReport()
    expectations = Expectations(knowledge)
    answers = answer_many([q.text for q in questions], [q.context for q in questions])
    for question, answer in zip(questions, answers, strict=True):
        _score(report, question, answer, expectations)
    standalone = [(q, a) for q, a in zip(questions, answers, strict=True) if q.standalone and q.context]
    alone = answer_many([q.text for q, _ in standalone], [() for _ in standalone]) if standalone else []
    for (question, with_context), without in zip(standalone, alone, strict=True):
        same = _gist(with_context) == _gist(without)
        report.standalone_unchanged.add(same)
        if not same:
            reason = f"the context changed it (without: {_gist(without)})"
            report.misses.append(Miss(question, [str(_gist(with_context))], reason))
    return report


def _gist(answer: Answer) -> tuple[object, ...]:
    """What a reader sees first: answered or the decline's reason, and the lead passage."""
    lead = answer.passages[0].passage.id if answer.answered and answer.passages else None
    return answer.answered, answer.decline_reason, lead


def _score(report: EvalReport, question: Question, answer: Answer, expectations: Expectations) -> None:
    ranked = [r.passage.id for r in answer.passages] if answer.answered else []
    got = ranked[:3] if answer.answered else [f"declined: {answer.decline_reason}"]

    def miss(reason: str) -> None:
        report.misses.append(Miss(question, got, reason))

    if question.category == "out_of_scope":
        _tally(report.out_of_scope_declined, not answer.answered, miss, "answered an out-of-scope question")
        if question.near:
            report.near_domain_declined.add(not answer.answered)
        report.out_of_scope_reason_right.add(answer.decline_reason == "out_of_scope")
    elif question.category == "not_a_question":
        small_talk = answer.decline_reason == "not_a_question"
        _tally(report.not_a_question_declined, small_talk, miss, "not taken as small talk")
    elif question.category == "not_understood":
        _tally(report.not_understood_declined, not answer.answered, miss, "answered a follow-up with no context")
    elif question.category == "not_covered":
        acceptable = expectations.widen(question.acceptable)
        fine = not answer.answered or (bool(ranked) and ranked[0] in acceptable)
        _tally(report.uncovered_not_misanswered, fine, miss, "answered an uncovered question with another subject")
        report.uncovered_reason_right.add(answer.decline_reason == "not_covered")
    elif question.category == "false_premise":
        current = expectations.widen(question.expect)
        flagged = answer.premise is not None and bool(current & set(ranked))
        _tally(report.premise_flagged, flagged, miss, "premise not flagged" if answer.premise is None
               else "premise flagged without the current position")
    elif question.category == "definition":
        _count_wrong_flag(report, answer, miss)
        expected = expectations.widen(question.expect)
        leads = bool(ranked) and ranked[0] in expected
        _tally(report.definition_hit_at_1, leads, miss, "did not lead with the definition")
    else:
        _score_answerable(report, question, answer, ranked, expectations=expectations, miss=miss)


def _score_answerable(
    report: EvalReport, question: Question, answer: Answer, ranked: list[str],
    *, expectations: Expectations, miss: Callable[[str], None],
) -> None:
    _count_wrong_flag(report, answer, miss)
    expected = expectations.widen(question.expect)
    rank = next((i for i, pid in enumerate(ranked, 1) if pid in expected), None)
    if question.context:
        report.follow_up_hit_at_3.add(rank is not None and rank <= 3)
    else:
        report.hit_at_1.add(rank == 1)
        report.hit_at_3.add(rank is not None and rank <= 3)
        report.falsely_declined.add(not answer.answered)
        report.reciprocal_ranks += 1 / rank if rank is not None else 0.0
    if rank is None or rank > 3:
        miss(f"declined ({answer.decline_reason})" if not answer.answered else "expected passage not in the top 3")
    if question.latest:
        latest = expectations.widen([question.latest])
        leads = bool(ranked) and ranked[0] in latest
        report.leads_with_latest.add(leads)
        if not leads and rank is not None and rank <= 3:
            miss(f"did not lead with the latest ({question.latest})")


def _count_wrong_flag(report: EvalReport, answer: Answer, miss: Callable[[str], None]) -> None:
    """An answerable or definitional question opened with "No: ..." as if it took something false for granted."""
    report.premise_wrongly_flagged.add(answer.premise is not None)
    if answer.premise is not None:
        miss(f"premise wrongly flagged ({answer.premise.note})")


def _tally(tally: Tally, ok: object, miss: Callable[[str], None], reason: str) -> None:
    tally.add(bool(ok))
    if not ok:
        miss(reason)
