"""The answer pipeline: understand, retrieve, judge, compose, in that order, for a batch of questions.

Follow-ups run twice, as asked and resolved against the conversation; :mod:`bot.core.followup`
chooses. One encoder call serves the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bot.core.compose import compose_answer
from bot.core.declines import decline
from bot.core.followup import FollowUpPlan, choose, plan
from bot.core.judge import judge
from bot.core.models import Answer
from bot.core.retrieval import retrieve
from bot.core.snapshot import Snapshot
from bot.core.understand import Query, understand

Encode = Callable[[list[str]], np.ndarray]


def answer_in_context(
    snapshot: Snapshot, encode: Encode, questions: Sequence[str], contexts: Sequence[Sequence[str]], k: int
) -> list[Answer]:
    known = snapshot.retriever.lexical.known_words
    plans = [plan(str(q), c, known) for q, c in zip(questions, contexts, strict=True)]
    texts = [text for p in plans for text in _texts_of(p)]
    results = iter(answer_texts(snapshot, encode, texts, k))
    answers = []
    for p in plans:
        alone = next(results)
        resolved = next(results) if p.resolved is not None else None
        earlier = next(results) if p.resolved is not None and p.dependent else None
        answers.append(choose(p, alone, resolved, earlier))
    return answers


def _texts_of(follow_up: FollowUpPlan) -> list[str]:
    """The question as asked; with a conversation, resolved; for a dependent one, the question it follows."""
    if follow_up.resolved is None or follow_up.earlier_in_full is None:
        return [follow_up.question]
    extra = [follow_up.earlier_in_full] if follow_up.dependent else []
    return [follow_up.question, follow_up.resolved, *extra]


def answer_texts(snapshot: Snapshot, encode: Encode, texts: Sequence[str], k: int) -> list[Answer]:
    """Understand every text, encode them in one call, then retrieve, judge and compose each."""
    queries = [understand(text, snapshot.retriever.lexical) for text in texts]
    encoded = [texts_to_encode(q) for q in queries]
    vectors = iter(encode([text for own in encoded for text in own]))
    return [answer_query(snapshot, query, next(vectors) if own else None, k)
            for query, own in zip(queries, encoded, strict=True)]


def texts_to_encode(query: Query) -> list[str]:
    """The question's text; nothing for one whose wording alone settles its decline."""
    return [] if query.declined_as_asked is not None else [question_text(query)]


def question_text(query: Query) -> str:
    """The text whose vector is the question's: what retrieval searches, as understood (typos fixed)."""
    return query.text


def answer_query(
    snapshot: Snapshot, query: Query, vector: np.ndarray | None, k: int
) -> Answer:
    candidates = retrieve(snapshot.retriever, query, vector, k)
    verdict = judge(query, vector, candidates, model=snapshot.judge_model, evidence=snapshot.evidence,
                    storylines=snapshot.storylines)
    if not verdict.answered:
        assert verdict.decline_reason is not None
        return decline(query.asked, verdict.decline_reason, candidates, snapshot, verdict.confidence)
    return compose_answer(query, verdict, candidates, snapshot, k)
