"""A deterministic stand-in for the sentence encoder: hashed words and character trigrams.

It implements the ``Encoder`` protocol of :mod:`bot.core.embedding` and counts every text it
encodes, so a test can prove that an incremental build embedded only what changed.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np

from bot.core.retrieval import STOPWORDS
from bot.core.text import tokenize

FAKE_DIMENSION = 256


def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dimension, 1.0 if (value >> 32) & 1 else -1.0


class FakeEncoder:
    """Hashed bag of content words (weight 1) and their character trigrams (weight 0.5), L2-normalized.

    Stop words are skipped, so unrelated questions score near zero against every passage.
    """

    def __init__(self, *, dimension: int = FAKE_DIMENSION, model_name: str = "fake:hashed-trigrams",
                 kind: str = "fake") -> None:
        self._dimension = dimension
        self._model_name = model_name
        self._kind = kind
        self._lock = threading.Lock()
        self.encoded_texts: list[str] = []
        self.calls = 0

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def encoded(self) -> int:
        """How many texts this encoder has embedded so far."""
        return len(self.encoded_texts)

    def reset_counts(self) -> None:
        with self._lock:
            self.encoded_texts.clear()
            self.calls = 0

    def vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dimension, dtype=np.float32)
        for word in tokenize(text):
            if word in STOPWORDS:
                continue
            index, sign = _bucket("w:" + word, self._dimension)
            vector[index] += sign
            padded = f"#{word}#"
            for i in range(len(padded) - 2):
                index, sign = _bucket("t:" + padded[i:i + 3], self._dimension)
                vector[index] += 0.5 * sign
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.encoded_texts.extend(texts)
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.ascontiguousarray(np.stack([self.vector(t) for t in texts]), dtype=np.float32)
