"""The answer cache: a small thread-safe LRU keyed by knowledge-base version and question."""

from __future__ import annotations

import threading
from collections import OrderedDict

from bot.core.models import Answer

CacheKey = tuple[str, str, int, tuple[str, ...]]


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
