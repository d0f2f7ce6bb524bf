"""Answer quality on the project's question set, for the engine and the two baselines.

The baselines rank passages by one signal each and decline below a threshold on that signal. Their
thresholds are calibrated on the question set itself (the value that makes the most answer/decline
calls right), which flatters them: the engine keeps its fixed, shipped ``min_score``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.core.evaluation import EvalReport, Question, evaluate
from bot.core.knowledge import KnowledgeBase
from bot.core.models import Passage

log = logging.getLogger(__name__)

TOP_K = 5


@dataclass(frozen=True)
class Ranking:
    """A baseline's answer to one question: passage ids best first, and the score of the best one."""

    ids: tuple[str, ...]
    top_score: float


@dataclass(frozen=True)
class QualityRow:
    name: str
    hit_at_1: float
    hit_at_3: float
    mrr: float
    correct_abstention: float
    abstention_recall: float
    abstention_precision: float
    threshold: float | None = None

    @classmethod
    def from_report(cls, name: str, report: EvalReport, threshold: float | None = None) -> QualityRow:
        return cls(
            name=name, hit_at_1=report.hit_at_1, hit_at_3=report.hit_at_3, mrr=report.mrr,
            correct_abstention=correct_abstention(report), abstention_recall=report.abstention_recall,
            abstention_precision=report.abstention_precision, threshold=threshold,
        )


def correct_abstention(report: EvalReport) -> float:
    """Share of questions where answering or declining was the right call."""
    total = report.in_scope + report.out_of_scope
    if not total:
        return 0.0
    return (report.declined_correctly + report.in_scope - report.declined_wrongly) / total


# -- adapters so the baselines are scored by the very same ``evaluate`` ---------------------------


@dataclass(frozen=True)
class _RankedPassage:
    passage: Passage


@dataclass(frozen=True)
class _RankedAnswer:
    answered: bool
    passages: tuple[_RankedPassage, ...]


def report_for_rankings(
    questions: Sequence[Question], rankings: Sequence[Ranking], knowledge: KnowledgeBase, threshold: float
) -> EvalReport:
    answers = [
        _RankedAnswer(
            answered=bool(r.ids) and r.top_score >= threshold,
            passages=tuple(_RankedPassage(knowledge.passages[pid]) for pid in r.ids),
        )
        for r in rankings
    ]
    by_text = dict(zip((q.text for q in questions), answers, strict=False))
    return evaluate(questions, lambda texts: [by_text[t] for t in texts])  # type: ignore[misc]


def calibrate_threshold(questions: Sequence[Question], rankings: Sequence[Ranking], knowledge: KnowledgeBase) -> float:
    """The decline threshold that makes the most answer/decline calls right on this question set."""
    candidates = sorted({r.top_score for r in rankings} | {0.0})
    best, best_score = 0.0, -1.0
    for threshold in candidates:
        score = correct_abstention(report_for_rankings(questions, rankings, knowledge, threshold))
        if score > best_score:
            best, best_score = threshold, score
    return best


def score_baseline(
    name: str, questions: Sequence[Question], rank: Callable[[str], Ranking], knowledge: KnowledgeBase
) -> QualityRow:
    rankings = [rank(q.text) for q in questions]
    threshold = calibrate_threshold(questions, rankings, knowledge)
    report = report_for_rankings(questions, rankings, knowledge, threshold)
    return QualityRow.from_report(name, report, threshold)


# -- the baselines -------------------------------------------------------------------------------


class NaiveBaseline:
    """What one writes first: sentence-transformers on torch, ``encode``, exact FAISS search. No cache, no fusion."""

    def __init__(
        self, model_location: str, knowledge: KnowledgeBase, *, passage_vectors: np.ndarray | None = None
    ) -> None:
        """``passage_vectors`` (row-aligned with ``knowledge.passages``) skips re-encoding the same passages."""
        import faiss
        from sentence_transformers import SentenceTransformer

        self._ids = list(knowledge.passages)
        self.model = SentenceTransformer(model_location, device="cpu")
        if passage_vectors is None:
            passage_vectors = self.model.encode(
                [p.embedded_text for p in knowledge.passages.values()], batch_size=32,
                normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
            )
        self._index = faiss.IndexFlatIP(passage_vectors.shape[1])
        self._index.add(np.ascontiguousarray(passage_vectors, dtype=np.float32))

    def rank(self, question: str) -> Ranking:
        vector = self.model.encode([question], normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)
        scores, rows = self._index.search(np.ascontiguousarray(vector, dtype=np.float32), TOP_K)
        return Ranking(tuple(self._ids[r] for r in rows[0] if r >= 0), float(scores[0][0]))


class Bm25Baseline:
    """Lexical retrieval alone: the ``bm25s`` package over the same passage texts."""

    def __init__(self, knowledge: KnowledgeBase) -> None:
        import bm25s

        self._bm25s: Any = bm25s
        self._ids = list(knowledge.passages)
        corpus = [p.embedded_text for p in knowledge.passages.values()]
        self._retriever = bm25s.BM25()
        self._retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)

    def rank(self, question: str) -> Ranking:
        tokens = self._bm25s.tokenize([question], stopwords="en", show_progress=False)
        if not tokens.vocab:  # nothing left after stop words
            return Ranking((), 0.0)
        k = min(TOP_K, len(self._ids))
        rows, scores = self._retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        ranked = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]
        return Ranking(tuple(self._ids[r] for r, _ in ranked), ranked[0][1] if ranked else 0.0)
