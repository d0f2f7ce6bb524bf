"""The engine's value types: passages as curated, and answers as served."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

PassageKind = Literal["event", "plan", "proposal", "background"]


@dataclass(frozen=True)
class Source:
    publisher: str
    title: str
    url: str
    found: bool = True  # False: the page could not be found again (the passage's note names a corroborating one)
    repost: bool = False  # a repost, aggregator or proxy rather than the outlet that published the report

    def to_dict(self) -> dict[str, Any]:
        return {"publisher": self.publisher, "title": self.title, "url": self.url, "found": self.found,
                "repost": self.repost}


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str
    date: dt.date
    source: Source
    topic: str
    file: Path
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    supersedes: tuple[str, ...] = ()
    kind: PassageKind = "event"
    corrects: tuple[str, ...] = ()  # common misbeliefs this passage corrects, one sentence each
    checked: dt.date | None = None  # when the cited page was last read and found to state the facts
    note: str | None = None  # for moderators only: never in to_dict(), never shown to users

    @property
    def embedded_text(self) -> str:
        """What the encoder sees: the title carries the subject, the text the facts."""
        return f"{self.title}. {self.text}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "date": self.date.isoformat(),
            "topic": self.topic,
            "source": self.source.to_dict(),
            "tags": list(self.tags),
            "aliases": list(self.aliases),
            "supersedes": list(self.supersedes),
            "kind": self.kind,
            "corrects": list(self.corrects),
            "checked": self.checked.isoformat() if self.checked else None,
        }

    def to_record(self) -> dict[str, Any]:
        """Everything about the passage, the moderators' note included: for hashing and storing, not showing."""
        return {**self.to_dict(), "note": self.note}


@dataclass(frozen=True)
class Topic:
    slug: str
    title: str
    file: Path
    passage_ids: tuple[str, ...]


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in the knowledge files: where it is and why."""

    file: str
    passage: str | None
    field: str | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = [self.file]
        if self.passage:
            where.append(f"passage {self.passage}")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{': '.join(where)}: {self.message}"


@dataclass(frozen=True)
class TopicSummary:
    slug: str
    title: str
    count: int


@dataclass(frozen=True)
class Suggestion:
    """An autocomplete or "did you mean" entry."""

    label: str
    kind: Literal["question", "passage", "topic"]
    passage_id: str | None = None


@dataclass(frozen=True)
class RankedPassage:
    """A passage as ranked for one question.

    ``score`` is the fused retrieval score (weighted reciprocal-rank fusion of the dense, BM25 and
    alias rankings): it orders passages for one question and is not comparable across questions.
    ``cosine`` is the dense cosine similarity between the question and the passage.
    """

    passage: Passage
    score: float
    cosine: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.passage.to_dict(), "score": round(self.score, 4), "cosine": round(self.cosine, 4)}


DeclineReason = Literal["not_a_question", "out_of_scope", "not_covered", "not_understood"]


@dataclass(frozen=True)
class Premise:
    """A presupposition of the question that the knowledge base contradicts, as of a date."""

    holds: bool
    note: str
    as_of: dt.date

    def to_dict(self) -> dict[str, Any]:
        return {"holds": self.holds, "note": self.note, "as_of": self.as_of.isoformat()}


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool
    lead: str
    passages: tuple[RankedPassage, ...]
    history: tuple[Passage, ...]
    suggestions: tuple[str, ...]
    kb_version: str
    latency_ms: float = 0.0
    decline_reason: DeclineReason | None = None
    message: str = ""  # a decline's explanation, shown as it is by every shell
    confidence: float = 0.0  # calibrated probability that the lead passage answers the question
    premise: Premise | None = None
    context_used: str | None = None  # the earlier question a follow-up drew on

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON contract of ``spacebot ask --json``."""
        return {
            "question": self.question,
            "answered": self.answered,
            "answer": self.lead,
            "passages": [ranked.to_dict() for ranked in self.passages],
            "history": [passage.to_dict() for passage in self.history],
            "suggestions": list(self.suggestions),
            "decline_reason": self.decline_reason,
            "message": self.message,
            "confidence": round(self.confidence, 4),
            "premise": self.premise.to_dict() if self.premise else None,
            "context_used": self.context_used,
            "kb_version": self.kb_version,
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass(frozen=True)
class BuildReport:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    reused: int = 0
    rebuilt_reason: str | None = None


@dataclass(frozen=True)
class ReloadReport:
    ok: bool
    kb_version: str
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    reused: int = 0
    warnings: tuple[ValidationIssue, ...] = ()
    errors: tuple[ValidationIssue, ...] = ()
    duration_s: float = 0.0
    actor: str | None = None


@dataclass(frozen=True)
class EngineStatus:
    kb_version: str
    passage_count: int
    topic_count: int
    model_name: str
    encoder: str
    index_kind: str
    index_size_bytes: int
    started_at: dt.datetime
    last_reload_at: dt.datetime | None
    last_reload_by: str | None
    median_latency_ms: float | None
