"""Micro-batching: questions that arrive within a few milliseconds share one encoder call.

Identical questions in flight at the same time (same text up to case and spacing, same ``k`` and
context) are answered once and the answer is shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace

from bot.core.cache import same_question_key
from bot.core.models import Answer

AnswerMany = Callable[[Sequence[str], int, Sequence[tuple[str, ...]]], list[Answer]]


@dataclass(frozen=True)
class _Request:
    question: str
    k: int
    context: tuple[str, ...]
    future: asyncio.Future[Answer]


class MicroBatcher:
    """Collects questions for ``wait_s`` seconds (or ``max_batch`` of them) and answers them together."""

    def __init__(
        self, answer_many: AnswerMany, loop: asyncio.AbstractEventLoop, executor: Executor,
        *, wait_s: float, max_batch: int,
    ) -> None:
        self.loop = loop
        self._answer_many = answer_many
        self._executor = executor
        self._wait_s = wait_s
        self._max_batch = max_batch
        self._pending: list[_Request] = []
        self._in_flight: dict[tuple[str, int, tuple[str, ...]], asyncio.Future[Answer]] = {}
        self._flush_scheduled = False

    async def submit(self, question: str, k: int, context: tuple[str, ...] = ()) -> Answer:
        key = (same_question_key(question), k, tuple(same_question_key(c) for c in context))
        shared = self._in_flight.get(key)
        if shared is not None:
            return replace(await asyncio.shield(shared), question=question)
        future: asyncio.Future[Answer] = self.loop.create_future()
        self._in_flight[key] = future
        future.add_done_callback(lambda _: self._in_flight.pop(key, None))
        self._pending.append(_Request(question, k, context, future))
        if len(self._pending) >= self._max_batch:
            self._start_flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_later(self._wait_s, self._start_flush)
        return await asyncio.shield(future)

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            self.loop.create_task(self._flush(batch))

    async def _flush(self, batch: list[_Request]) -> None:
        by_k: dict[int, list[_Request]] = {}
        for request in batch:
            by_k.setdefault(request.k, []).append(request)
        for k, requests in by_k.items():
            try:
                answers = await self.loop.run_in_executor(
                    self._executor, self._answer_many,
                    [r.question for r in requests], k, [r.context for r in requests],
                )
            except Exception as exc:  # delivered to every waiter, who re-raises it
                for request in requests:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            for request, answer in zip(requests, answers, strict=True):
                if not request.future.done():
                    request.future.set_result(answer)
