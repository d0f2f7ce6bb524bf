"""Stage 4, composition of a decline: the reason, a plain explanation and relevant suggestions.

- ``not_a_question``: greetings, thanks, "help": a short help text and three example questions.
- ``out_of_scope``: not space policy: what the bot covers (the summary of ``knowledge/scope.md``).
- ``not_covered``: space policy the knowledge base lacks: said plainly, with the nearest topics.
- ``not_understood``: a follow-up with nothing to follow: a hint to ask in full.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from bot.core.models import Answer, DeclineReason
from bot.core.retrieval import Candidate
from bot.core.snapshot import Snapshot

MAX_SUGGESTIONS = 3
NEARBY_CANDIDATES = 8

HELP_TEXT = (
    "Hi! I answer space-policy questions from a curated, dated and cited knowledge base: every answer "
    "is a passage a person checked, with its date and its source. Try one of these, or use /topics to "
    "see everything I cover."
)
OUT_OF_SCOPE_TEXT = "I can't answer that: it is not a space-policy question, and I only answer from my knowledge base."
NOT_COVERED_TEXT = (
    "That is a space-policy question, but my knowledge base does not cover it yet, so I won't guess. "
    "The nearest topics I do cover are below; /topics lists them all."
)
NOT_UNDERSTOOD_TEXT = (
    "I'm not sure what that follows up on. Please ask the whole question, for example "
    "\"When is Russia leaving the ISS?\"."
)


def decline(
    question: str, reason: DeclineReason, candidates: Sequence[Candidate], snapshot: Snapshot, confidence: float = 0.0
) -> Answer:
    if reason == "not_a_question":
        message, suggestions = HELP_TEXT, example_questions(question, snapshot)
    elif reason == "out_of_scope":
        summary = snapshot.evidence.prototypes.scope.summary
        message, suggestions = f"{OUT_OF_SCOPE_TEXT} {summary}".strip(), []
    elif reason == "not_covered":
        message, suggestions = NOT_COVERED_TEXT, nearest_topics(candidates, snapshot)
    else:
        message, suggestions = NOT_UNDERSTOOD_TEXT, []
    return Answer(
        question=question, answered=False, lead="", passages=(), history=(), suggestions=tuple(suggestions),
        kb_version=snapshot.version, decline_reason=reason, message=message, confidence=confidence,
    )


def nearest_topics(candidates: Sequence[Candidate], snapshot: Snapshot) -> list[str]:
    """Titles of the topics of the closest passages, nearest first."""
    topics = snapshot.knowledge.topics
    titles = [topics[c.passage.topic].title for c in candidates[:NEARBY_CANDIDATES] if c.passage.topic in topics]
    return list(dict.fromkeys(titles))[:MAX_SUGGESTIONS]


def example_questions(question: str, snapshot: Snapshot) -> list[str]:
    """Three example questions spread over the knowledge base, the same ones for the same greeting."""
    examples = list(dict.fromkeys(snapshot.knowledge.examples))
    if not examples:
        return []
    start = zlib.crc32(question.casefold().encode("utf-8")) % len(examples)
    step = max(1, len(examples) // MAX_SUGGESTIONS)
    picked = [examples[(start + i * step) % len(examples)] for i in range(MAX_SUGGESTIONS)]
    return list(dict.fromkeys(picked))
