"""The question set scored with the real model over the shipped knowledge (never skipped)."""

from __future__ import annotations

import pytest

from bot.core.engine import Engine
from bot.core.evaluation import EvalReport, Question, evaluate, load_questions
from tests.conftest import QUESTIONS

MIN_HIT_AT_3 = 0.9
MIN_ABSTENTION = 0.85


def _describe(report: EvalReport) -> str:
    lines = report.summary_lines()
    lines += [
        f"miss [{m.question.source}] {m.question.text!r}: {m.reason}; "
        f"expected {list(m.question.expect) or 'to decline'}, got {m.got}"
        for m in report.misses
    ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    return load_questions(QUESTIONS)


@pytest.fixture(scope="module")
def report(shipped_engine: Engine, questions: list[Question]) -> EvalReport:
    result = evaluate(questions, shipped_engine.answer_many)
    print(_describe(result))  # shown with -s, and in the failure report of any test below
    return result


def test_question_set_has_in_scope_and_out_of_scope_questions(questions: list[Question]) -> None:
    assert sum(not q.out_of_scope for q in questions) >= 50
    assert sum(q.out_of_scope for q in questions) >= 10


def test_expected_passages_exist_in_the_shipped_knowledge(shipped_engine: Engine, questions: list[Question]) -> None:
    known = set(shipped_engine.knowledge.passages)
    unknown = [f"[{q.source}] {q.text!r}: {pid}" for q in questions
               for pid in (*q.expect, *([q.latest] if q.latest else [])) if pid not in known]
    assert not unknown, "question set names passages that do not exist:\n" + "\n".join(unknown)


def test_hit_at_3_is_at_least_0_9(report: EvalReport) -> None:
    assert report.in_scope > 0
    assert report.hit_at_3 >= MIN_HIT_AT_3, _describe(report)


def test_out_of_scope_questions_are_declined_at_least_85_percent(report: EvalReport) -> None:
    assert report.out_of_scope > 0
    assert report.abstention_recall >= MIN_ABSTENTION, _describe(report)


def test_metrics_are_consistent(report: EvalReport, questions: list[Question]) -> None:
    assert 0.0 <= report.hit_at_1 <= report.hit_at_3 <= 1.0
    assert report.hit_at_1 <= report.mrr <= 1.0
    assert report.in_scope + report.out_of_scope == len(questions)
