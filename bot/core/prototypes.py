"""Vectors the judge compares questions with: scope subjects, example questions and corrections.

They are a few hundred short texts; their vectors are cached next to the index (keyed by the
model, the encoder and the texts), so a warm start encodes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.core.embedding import Encoder
from bot.core.knowledge import KnowledgeBase
from bot.core.models import Passage
from bot.core.scope import Scope, parse_scope
from bot.core.stemming import stem
from bot.core.text import tokenize

log = logging.getLogger(__name__)

CACHE_FOLDER = "prototypes"
KEEP_CACHED = 8


_NEGATION = re.compile(
    r"\b(has|have|had|did|does|do|is|are|was|were|will|can)?\s*(?:not yet|not|never|no longer)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Correction:
    """One ``corrects`` sentence and the passage that states it."""

    sentence: str
    passage: Passage

    @functools.cached_property
    def words(self) -> frozenset[str]:
        """Stems of the words of the sentence, its passage's title and aliases."""
        passage = self.passage
        return frozenset(stem(t) for t in tokenize(" ".join([self.sentence, passage.title, *passage.aliases])))

    @property
    def claim(self) -> str:
        """The belief it corrects, as a statement: "Russia has not left the ISS." -> "Russia left the ISS"."""
        first_clause = self.sentence.split(";")[0].split(":")[0]
        return " ".join(_NEGATION.sub(r"\1", first_clause).split()).rstrip(".")


@dataclass(frozen=True)
class Prototypes:
    scope: Scope
    covered: np.ndarray  # scope subjects, topic titles and example questions of the knowledge base
    not_covered: np.ndarray  # subjects the bot does not cover
    corrections: tuple[Correction, ...]
    correction_vectors: np.ndarray  # of each correction's claim: the belief, stated positively
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # the judge's tuning questions, by group
    # each correction's passage as the index holds it (a zero row where the index lacks it)
    correction_passage_vectors: np.ndarray | None = None

    @functools.cached_property
    def correction_rows(self) -> dict[str, tuple[int, ...]]:
        """The rows of ``corrections`` (and ``correction_vectors``) on each topic, in order."""
        rows: dict[str, list[int]] = {}
        for row, correction in enumerate(self.corrections):
            rows.setdefault(correction.passage.topic, []).append(row)
        return {topic: tuple(found) for topic, found in rows.items()}

    @classmethod
    def build(
        cls, knowledge: KnowledgeBase, encoder: Encoder, cache_dir: Path | None,
        examples: Mapping[str, Sequence[str]] | None = None,
        passage_vectors: Callable[[str], np.ndarray | None] | None = None,
    ) -> Prototypes:
        scope = parse_scope(knowledge.scope)
        covered = [*scope.covered, *(t.title for t in knowledge.topics.values()), *knowledge.examples]
        corrections = tuple(
            Correction(sentence, passage)
            for passage in knowledge.passages.values()
            for sentence in passage.corrects
        )
        groups = {name: list(texts) for name, texts in (examples or {}).items()}
        texts = [*covered, *scope.not_covered, *(c.claim for c in corrections)]
        vectors = encode_cached(encoder, texts + [t for group in groups.values() for t in group], cache_dir)
        first_out, first_correction = len(covered), len(covered) + len(scope.not_covered)
        start, example_vectors = len(texts), {}
        for name, group in groups.items():
            example_vectors[name] = vectors[start:start + len(group)]
            start += len(group)
        return cls(
            scope=scope,
            covered=vectors[:first_out],
            not_covered=vectors[first_out:first_correction],
            corrections=corrections,
            correction_vectors=vectors[first_correction:len(texts)],
            examples=example_vectors,
            correction_passage_vectors=_passage_rows(corrections, passage_vectors, encoder.dimension),
        )


def _passage_rows(
    corrections: Sequence[Correction], vector_of: Callable[[str], np.ndarray | None] | None, dimension: int
) -> np.ndarray | None:
    if vector_of is None:
        return None
    rows = np.zeros((len(corrections), dimension), dtype=np.float32)
    for row, correction in enumerate(corrections):
        vector = vector_of(correction.passage.id)
        if vector is not None:
            rows[row] = vector
    return rows


def encode_cached(encoder: Encoder, texts: list[str], cache_dir: Path | None) -> np.ndarray:
    """``encoder.encode(texts)``, read from or saved to ``cache_dir`` when one is given."""
    if not texts:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    if cache_dir is None:
        return encoder.encode(texts, batch_size=64)
    key = json.dumps([encoder.model_name, encoder.kind, texts], ensure_ascii=False)
    path = cache_dir / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:24]}.npy"
    cached = _read(path, len(texts), encoder.dimension)
    if cached is not None:
        return cached
    vectors = encoder.encode(texts, batch_size=64)
    _write(path, vectors)
    return vectors


def _read(path: Path, rows: int, dimension: int) -> np.ndarray | None:
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vectors.shape != (rows, dimension) or vectors.dtype != np.float32:
        log.warning("ignoring a prototype cache file of the wrong shape: %s", path)
        return None
    return vectors


def _write(path: Path, vectors: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.npy")
        np.save(temporary, vectors, allow_pickle=False)
        os.replace(temporary, path)
        for stale in sorted(path.parent.glob("*.npy"), key=lambda p: p.stat().st_mtime)[:-KEEP_CACHED]:
            stale.unlink(missing_ok=True)
    except OSError as exc:  # a cache: failing to write it only costs time on the next start
        log.warning("cannot cache prototype vectors in %s: %s", path.parent, exc)
