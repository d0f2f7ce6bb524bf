"""Grouping similar unanswered questions for the moderators' gap queue.

Questions with the same words are one question asked several times. The rest are grouped by the
encoder's vectors with a greedy "star" clustering: the question with the most unassigned neighbours
(cosine >= threshold) starts a group of those neighbours, and so on. Each group is shown by its
medoid, the member most similar to all the others (weighted by how often each wording was asked):
the most typical wording, never an average nobody asked.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.core.text import tokenize
from bot.storage.records import GapGroup

DEFAULT_THRESHOLD = 0.75
EXAMPLES = 3
TOPICS = 3


@dataclass(frozen=True)
class GapSample:
    """One recorded gap, as the grouping needs it."""

    question: str
    created_at: dt.datetime
    vector: np.ndarray | None
    topics: tuple[str, ...] = ()
    reason: str = "not_covered"


@dataclass
class _Wording:
    """Every sample with the same words: the unit the clustering works on."""

    samples: list[GapSample] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.samples[0].question

    @property
    def vector(self) -> np.ndarray | None:
        return next((s.vector for s in self.samples if s.vector is not None), None)


def vector_to_bytes(vector: Sequence[float] | np.ndarray) -> bytes:
    """A vector as portable bytes: float32, little-endian."""
    return np.asarray(vector, dtype="<f4").ravel().tobytes()


def vector_from_bytes(data: bytes | None) -> np.ndarray | None:
    if not data:
        return None
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def group_gaps(
    samples: Sequence[GapSample], threshold: float = DEFAULT_THRESHOLD, limit: int | None = None
) -> list[GapGroup]:
    """The groups, largest first (then most recently seen)."""
    wordings = _wordings(samples)
    groups = [_summarise(members, similarity) for members, similarity in _clusters(wordings, threshold)]
    groups.sort(key=lambda g: (-g.count, -g.last_seen.timestamp(), g.question))
    return groups if limit is None else groups[:limit]


def _wordings(samples: Sequence[GapSample]) -> list[_Wording]:
    by_words: dict[str, _Wording] = {}
    for sample in sorted(samples, key=lambda s: s.created_at):
        key = " ".join(tokenize(sample.question)) or sample.question.strip()
        by_words.setdefault(key, _Wording()).samples.append(sample)
    return list(by_words.values())


def _clusters(wordings: list[_Wording], threshold: float) -> list[tuple[list[_Wording], np.ndarray]]:
    """Groups of wordings, each with its members' pairwise cosine matrix."""
    with_vectors = [w for w in wordings if w.vector is not None]
    dimensions = Counter(len(w.vector) for w in with_vectors if w.vector is not None)
    dimension = dimensions.most_common(1)[0][0] if dimensions else 0
    vectorised = [w for w in with_vectors if w.vector is not None and len(w.vector) == dimension]
    clusters = [([w], np.ones((1, 1), dtype=np.float32)) for w in wordings if w not in vectorised]
    if not vectorised:
        return clusters
    matrix = np.stack([_unit(w.vector) for w in vectorised if w.vector is not None])
    similarity = matrix @ matrix.T
    neighbours = similarity >= threshold
    weights = np.array([len(w.samples) for w in vectorised], dtype=np.float64)
    unassigned = np.ones(len(vectorised), dtype=bool)
    while unassigned.any():
        reach = (neighbours[:, unassigned] * weights[unassigned]).sum(axis=1)
        reach[~unassigned] = -1.0
        seed = int(np.argmax(reach))  # ties: the earliest wording, as they are sorted by first time asked
        members = np.flatnonzero(neighbours[seed] & unassigned)
        unassigned[members] = False
        clusters.append(([vectorised[i] for i in members], similarity[np.ix_(members, members)]))
    return clusters


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _summarise(members: list[_Wording], similarity: np.ndarray) -> GapGroup:
    weights = np.array([len(w.samples) for w in members], dtype=np.float64)
    typicality = similarity.astype(np.float64) @ weights  # a wording asked often counts as often
    order = sorted(range(len(members)), key=lambda i: (-typicality[i], -weights[i], members[i].samples[0].created_at))
    samples = [s for w in members for s in w.samples]
    times = [s.created_at for s in samples]
    topics = Counter(topic for s in samples for topic in s.topics)
    return GapGroup(
        question=members[order[0]].text,
        count=len(samples),
        first_seen=min(times),
        last_seen=max(times),
        examples=tuple(members[i].text for i in order[1 : 1 + EXAMPLES]),
        topics=tuple(topic for topic, _ in topics.most_common(TOPICS)),
        reasons=dict(sorted(Counter(s.reason for s in samples).items())),
    )
