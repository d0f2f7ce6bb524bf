"""The question set: its files validate with clear errors, and the scoring widens expectations
to newer positions on a storyline."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from bot.core.evaluation import Expectations, evaluate
from bot.core.knowledge import KnowledgeBase
from bot.core.models import Answer, Passage, Premise, RankedPassage, Source, Topic
from bot.core.questions import Question, QuestionFileError, load_questions

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "set.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_question_sets_load() -> None:
    assert len(load_questions(REPO / "questions" / "tuning")) >= 300
    assert len(load_questions(REPO / "questions" / "holdout")) >= 300


@pytest.mark.parametrize(("entry", "problem"), [
    ('- q: "x"\n', "needs 'expect'"),
    ('- q: "x"\n  category: out_of_scope\n  expect: [a]\n', "has no 'expect'"),
    ('- q: "x"\n  category: sport\n', "category"),
    ('- q: "x"\n  expect: [a]\n  colour: red\n', "colour"),
    ('- q: ""\n  category: out_of_scope\n', "q"),
])
def test_a_bad_question_is_named_with_its_file_position_and_problem(tmp_path: Path, entry: str, problem: str) -> None:
    path = _write(tmp_path, "questions:\n" + "\n".join("  " + line for line in entry.splitlines()) + "\n")
    with pytest.raises(QuestionFileError) as error:
        load_questions(path)
    assert str(path) in str(error.value)
    assert "#1" in str(error.value)
    assert problem in str(error.value)


def test_a_file_that_is_not_a_question_list_is_named(tmp_path: Path) -> None:
    with pytest.raises(QuestionFileError, match=r"set\.yaml"):
        load_questions(_write(tmp_path, "- just a list\n"))


def _passage(pid: str, supersedes: tuple[str, ...] = ()) -> Passage:
    return Passage(id=pid, title=pid, text=f"{pid}.", date=dt.date(2024, 1, 1), topic="t", file=Path("t.yaml"),
                   source=Source("P", "T", "https://example.org"), supersedes=supersedes)


def _knowledge() -> KnowledgeBase:
    passages = {p.id: p for p in (_passage("old"), _passage("mid", ("old",)), _passage("new", ("mid",)))}
    return KnowledgeBase(topics={"t": Topic("t", "T", Path("t.yaml"), tuple(passages))}, passages=passages)


def test_an_expected_passage_counts_through_its_newer_positions() -> None:
    assert Expectations(_knowledge()).widen(["old"]) == {"old", "mid", "new"}
    assert Expectations(_knowledge()).widen(["new"]) == {"new"}


def _answer(lead: str | None, reason: str | None = None) -> Answer:
    knowledge = _knowledge()
    passages = (RankedPassage(knowledge.passages[lead], 1.0),) if lead else ()
    return Answer(question="q", answered=lead is not None, lead="", passages=passages, history=(), suggestions=(),
                  kb_version="v", decline_reason=reason)  # type: ignore[arg-type]


def test_scoring_counts_each_category_on_its_own_tally() -> None:
    questions = [
        Question(q="a", expect=("old",)),
        Question(q="b", category="out_of_scope", near=True),
        Question(q="c", category="not_covered"),
        Question(q="d", category="definition", expect=("mid",)),
    ]
    answers = [_answer("new"), _answer(None, "out_of_scope"), _answer("old"), _answer("old")]
    report = evaluate(questions, lambda texts, contexts: answers, _knowledge())
    assert (report.hit_at_1.good, report.hit_at_1.total) == (1, 1)
    assert report.near_domain_declined.rate == 1.0 and report.out_of_scope_reason_right.rate == 1.0
    assert report.uncovered_not_misanswered.rate == 0.0
    assert report.definition_hit_at_1.rate == 0.0
    assert {m.question.text for m in report.misses} == {"c", "d"}


def test_a_correction_on_a_question_whose_premise_holds_counts_as_wrongly_flagged() -> None:
    questions = [Question(q="a", expect=("new",)), Question(q="b", category="definition", expect=("new",)),
                 Question(q="c", category="false_premise", expect=("new",))]
    correction = Premise(False, "No: as of January 2024, it has not happened.", dt.date(2024, 1, 1))
    answers = [dataclasses.replace(_answer("new"), premise=correction), _answer("new"),
               dataclasses.replace(_answer("new"), premise=correction)]
    report = evaluate(questions, lambda texts, contexts: answers, _knowledge())
    assert (report.premise_wrongly_flagged.good, report.premise_wrongly_flagged.total) == (1, 2)
    assert report.premise_flagged.rate == 1.0
    assert [m.question.text for m in report.misses] == ["a"]


def test_no_autocomplete_example_copies_a_holdout_question() -> None:
    from bot.core.knowledge import load_knowledge

    knowledge = load_knowledge(REPO / "knowledge").knowledge
    assert knowledge is not None
    holdout = {" ".join(q.text.casefold().split()) for q in load_questions(REPO / "questions" / "holdout")}
    copies = [e for e in knowledge.examples if " ".join(e.casefold().split()) in holdout]
    assert not copies, f"autocomplete examples that copy holdout questions: {copies}"
