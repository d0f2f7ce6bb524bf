"""The engine's caches: answers by knowledge-base version and question; vectors by the text encoded."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from bot.core.models import Answer

CacheKey = tuple[str, str, int, tuple[str, ...]]
RECENT_VECTORS = 256  # 1.5 KB each at 384 dimensions


def same_question_key(question: str) -> str:
    """Questions that differ only in case and spacing share one answer (cache and in-flight dedupe)."""
    return " ".join(question.casefold().split())


def cache_key(version: str, question: str, k: int, context: tuple[str, ...] = ()) -> CacheKey:
    return version, same_question_key(question), k, tuple(same_question_key(c) for c in context)


class AnswerCache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[CacheKey, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> Answer | None:
        with self._lock:
            answer = self._entries.get(key)
            if answer is not None:
                self._entries.move_to_end(key)
            return answer

    def put(self, key: CacheKey, answer: Answer) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._entries[key] = answer
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class VectorCache:
    """The vectors of the last texts the answer path encoded, so work that follows an answer (grouping
    an unanswered question with similar ones) reuses the vector instead of encoding the text again.
    Vectors depend on the encoder only, which a reload keeps: nothing to clear on a swap."""

    def __init__(self, size: int = RECENT_VECTORS) -> None:
        self._size = size
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            return self._entries.get(text)

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._entries[text] = vector
                self._entries.move_to_end(text)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
