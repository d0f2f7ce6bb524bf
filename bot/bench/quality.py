"""Answer quality on the holdout questions, for the engine and the baselines, scored by the same ``evaluate``.

A baseline answers with its ranking and declines when its top score is below a threshold. That
threshold is fitted on ``questions/tuning`` only (never on the holdout it is scored on), as the
engine's judge is: the value that makes the most answer-or-decline calls right there.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.bench.baselines import Ranking
from bot.core.evaluation import EvalReport, Expectations, Tally, evaluate
from bot.core.knowledge import KnowledgeBase
from bot.core.models import Answer, RankedPassage
from bot.core.questions import Question

if TYPE_CHECKING:
    from bot.core.engine import Engine

log = logging.getLogger(__name__)

# Columns of the quality table: (key, EvalReport tally). ``falsely_declined`` counts in-scope questions
# declined and ``premise_wrongly_flagged`` true premises told "No", so lower is better there.
METRICS = (
    "hit_at_1", "hit_at_3", "falsely_declined", "out_of_scope_declined", "near_domain_declined",
    "uncovered_not_misanswered", "premise_flagged", "premise_wrongly_flagged", "definition_hit_at_1",
    "follow_up_hit_at_3",
)
# What a single-signal baseline cannot do: it has no premise check and no conversation.
BASELINE_UNSUPPORTED = frozenset({"premise_flagged", "premise_wrongly_flagged", "follow_up_hit_at_3"})

RankMany = Callable[[Sequence[str]], list[Ranking]]


@dataclass(frozen=True)
class QualityRow:
    name: str
    metrics: dict[str, dict[str, int] | None]  # key -> {"good", "total"}; None: the system cannot do it
    threshold: float | None = None  # a baseline's decline threshold, fitted on the tuning questions

    @classmethod
    def from_report(cls, name: str, report: EvalReport, *, unsupported: frozenset[str] = frozenset(),
                    threshold: float | None = None) -> QualityRow:
        metrics: dict[str, dict[str, int] | None] = {}
        for key in METRICS:
            tally: Tally = getattr(report, key)
            metrics[key] = None if key in unsupported else {"good": tally.good, "total": tally.total}
        return cls(name, metrics, threshold)


# -- the engine ---------------------------------------------------------------------------------


def engine_row(name: str, engine: Engine, questions: Sequence[Question], knowledge: KnowledgeBase) -> QualityRow:
    report = evaluate(questions, lambda texts, contexts: engine.answer_many(texts, None, contexts), knowledge)
    return QualityRow.from_report(name, report)


# -- baselines -----------------------------------------------------------------------------------


def baseline_row(
    name: str, rank_many: RankMany, *, tuning: Sequence[Question], holdout: Sequence[Question],
    knowledge: KnowledgeBase,
) -> QualityRow:
    """Fit the decline threshold on ``tuning``, then score on ``holdout``."""
    alone = [q for q in tuning if not q.context]  # a baseline never sees the conversation
    threshold = fit_threshold(alone, rank_many([q.text for q in alone]), Expectations(knowledge))
    report = evaluate(holdout, baseline_answers(rank_many, threshold, knowledge), knowledge)
    return QualityRow.from_report(name, report, unsupported=BASELINE_UNSUPPORTED, threshold=threshold)


def baseline_answers(
    rank_many: RankMany, threshold: float, knowledge: KnowledgeBase
) -> Callable[[Sequence[str], Sequence[Sequence[str]]], list[Answer]]:
    """``evaluate``'s ``answer_many`` for a baseline: its ranking as an answer, or a decline below ``threshold``.

    Contexts are ignored: the baseline answers what was typed.
    """

    def answer_many(texts: Sequence[str], contexts: Sequence[Sequence[str]]) -> list[Answer]:
        return [as_answer(text, ranking, threshold, knowledge) for text, ranking in zip(texts, rank_many(texts),
                                                                                          strict=True)]

    return answer_many


def as_answer(text: str, ranking: Ranking, threshold: float, knowledge: KnowledgeBase) -> Answer:
    answered = answers(ranking, threshold)
    return Answer(
        question=text, answered=answered, lead="",
        passages=tuple(RankedPassage(knowledge.passages[pid], 0.0) for pid in ranking.ids) if answered else (),
        history=(), suggestions=(), kb_version=knowledge.version,
    )


def answers(ranking: Ranking, threshold: float) -> bool:
    return bool(ranking.ids) and ranking.top_score >= threshold


def right_call(question: Question, ranking: Ranking, threshold: float, expectations: Expectations) -> bool:
    """Whether answering or declining was right (not whether the answer was): what the threshold decides."""
    answered = answers(ranking, threshold)
    if not question.declines:
        return answered
    if answered and question.category == "not_covered":
        return ranking.ids[0] in expectations.widen(question.acceptable)
    return not answered


def fit_threshold(questions: Sequence[Question], rankings: Sequence[Ranking], expectations: Expectations) -> float:
    """The decline threshold that makes the most answer-or-decline calls right on ``questions``.

    Candidates lie halfway between consecutive top scores (and below the lowest, above the highest);
    ties go to the lower threshold.
    """
    scores = sorted({r.top_score for r in rankings})
    if not scores:
        return 0.0
    candidates = [scores[0] - 1.0, *((a + b) / 2 for a, b in itertools.pairwise(scores)), scores[-1] + 1.0]
    best, best_right = candidates[0], -1
    for threshold in candidates:
        right = sum(right_call(q, r, threshold, expectations) for q, r in zip(questions, rankings, strict=True))
        if right > best_right:
            best, best_right = threshold, right
    log.info("fitted threshold %.4f: %d of %d calls right", best, best_right, len(questions))
    return best
