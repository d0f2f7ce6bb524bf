"""The answer engine: an immutable snapshot (knowledge, index, retriever) behind an atomic swap.

Questions read whichever snapshot is current when they start, so a reload never disturbs one in
flight. Reloads are serialized, run off the caller's event loop, and leave the old snapshot serving
when the new knowledge files do not validate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from rapidfuzz import fuzz, process

from bot.core.compose import Storylines, compose_answer
from bot.core.config import Settings
from bot.core.embedding import Encoder, dictionary_words, load_encoder
from bot.core.knowledge import KnowledgeBase, load_knowledge
from bot.core.models import (
    Answer,
    BuildReport,
    EngineStatus,
    Passage,
    ReloadReport,
    Suggestion,
    TopicSummary,
    ValidationIssue,
)
from bot.core.retrieval import Candidate, Retriever, correct_query
from bot.core.store import IndexUnusableError, StoredIndex, current_snapshot_name, load_current, open_or_build
from bot.core.text import asks_about_the_past, find_time_reference

log = logging.getLogger(__name__)

# Calibrated on tests/data/questions (see `spacebot eval` and knowledge/README.md): the best dense
# cosine similarity below which a question is taken to be outside the knowledge base.
DEFAULT_MIN_SCORE = 0.32
MAX_QUESTION_CHARS = 2_000
LATENCY_WINDOW = 1_000


class KnowledgeError(Exception):
    """The knowledge files do not validate; ``issues`` names every problem."""

    def __init__(self, issues: Sequence[ValidationIssue]) -> None:
        self.issues = list(issues)
        super().__init__(f"{len(self.issues)} error(s) in the knowledge files")


@dataclass(frozen=True)
class Snapshot:
    """Everything one question needs, never mutated after it is built."""

    stored: StoredIndex
    retriever: Retriever
    storylines: Storylines
    suggestion_pool: tuple[str, ...]
    loaded_at: dt.datetime

    @classmethod
    def from_stored(cls, stored: StoredIndex, dictionary: frozenset[str] = frozenset()) -> Snapshot:
        knowledge = stored.knowledge
        pool = tuple(dict.fromkeys([*knowledge.examples, *(t.title for t in knowledge.topics.values())]))
        return cls(
            stored=stored,
            retriever=Retriever(knowledge, stored.vectors, stored.ids, dictionary),
            storylines=Storylines(knowledge.passages),
            suggestion_pool=pool,
            loaded_at=dt.datetime.now(dt.UTC),
        )

    @property
    def knowledge(self) -> KnowledgeBase:
        return self.stored.knowledge

    @property
    def version(self) -> str:
        return self.knowledge.version


def same_question_key(question: str) -> str:
    """Questions that differ only in case and spacing share one answer (cache and in-flight dedupe)."""
    return " ".join(question.casefold().split())


class AnswerCache:
    """A small thread-safe LRU of answers, keyed by knowledge-base version and question."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str, int], Answer] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(version: str, question: str, k: int) -> tuple[str, str, int]:
        return version, same_question_key(question), k

    def get(self, key: tuple[str, str, int]) -> Answer | None:
        with self._lock:
            answer = self._entries.get(key)
            if answer is not None:
                self._entries.move_to_end(key)
            return answer

    def put(self, key: tuple[str, str, int], answer: Answer) -> None:
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


class Engine:
    """Answers questions from the current snapshot; reloads build a new one and swap it in."""

    def __init__(self, settings: Settings, encoder: Encoder, snapshot: Snapshot, build: BuildReport) -> None:
        self.settings = settings
        self.encoder = encoder
        self._snapshot = snapshot
        self.last_build = build
        self.min_score = settings.min_score if settings.min_score is not None else DEFAULT_MIN_SCORE
        self.started_at = dt.datetime.now(dt.UTC)
        self.last_reload_at: dt.datetime | None = None
        self.last_reload_by: str | None = None
        self._reload_lock = threading.Lock()
        self._cache = AnswerCache(settings.cache_size)
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._batcher: _MicroBatcher | None = None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings, encoder: Encoder | None = None) -> Engine:
        """Load the knowledge base and the matching index, building what is missing. Blocks for seconds."""
        result = load_knowledge(settings.knowledge_dir)
        for warning in result.warnings:
            log.warning("%s", warning)
        if result.knowledge is None and current_snapshot_name(settings.index_dir) is None:
            raise KnowledgeError(result.errors)  # nothing to fall back on: fail before loading a model
        encoder = encoder or load_encoder(settings)
        if result.knowledge is None:
            return cls._open_from_saved_index(settings, encoder, result.errors)
        stored, report = open_or_build(result.knowledge, encoder, settings.index_dir)
        return cls(settings, encoder, _snapshot(settings, stored), report)

    @classmethod
    def _open_from_saved_index(cls, settings: Settings, encoder: Encoder, errors: list[ValidationIssue]) -> Engine:
        """Broken files at start-up: serve the last good index if there is one, else fail clearly."""
        try:
            stored = load_current(settings.index_dir, encoder)
        except IndexUnusableError:
            raise KnowledgeError(errors) from None
        for error in errors:
            log.error("knowledge file error (serving the last good index): %s", error)
        return cls(settings, encoder, _snapshot(settings, stored), BuildReport(reused=len(stored.ids)))

    def close(self) -> None:
        self._cache.clear()

    # -- reading --------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def knowledge(self) -> KnowledgeBase:
        return self._snapshot.knowledge

    @property
    def scope(self) -> str:
        return self._snapshot.knowledge.scope

    @property
    def reload_in_progress(self) -> bool:
        return self._reload_lock.locked()

    def passage(self, passage_id: str) -> Passage | None:
        return self._snapshot.knowledge.passages.get(passage_id.strip())

    def topics(self) -> list[TopicSummary]:
        return [TopicSummary(t.slug, t.title, len(t.passage_ids)) for t in self.knowledge.topics.values()]

    def suggest(self, text: str, limit: int = 25) -> list[Suggestion]:
        """Autocomplete entries: example questions, passage titles and ids, matched with rapidfuzz."""
        knowledge = self.knowledge
        entries = [Suggestion(q, "question") for q in knowledge.examples]
        entries += [Suggestion(p.title, "passage", p.id) for p in knowledge.passages.values()]
        query = text.strip()
        if not query:
            return entries[:limit]
        exact_ids = [
            Suggestion(p.title, "passage", p.id) for p in knowledge.passages.values() if p.id.startswith(query)
        ]
        labels = [f"{e.label} {e.passage_id or ''}" for e in entries]
        matches = process.extract(query, labels, scorer=fuzz.WRatio, limit=limit)
        ranked = exact_ids + [entries[index] for _, _, index in matches]
        return list(dict.fromkeys(ranked))[:limit]

    def status(self) -> EngineStatus:
        snapshot = self._snapshot
        latencies = list(self._latencies)
        return EngineStatus(
            kb_version=snapshot.version,
            passage_count=len(snapshot.knowledge),
            topic_count=len(snapshot.knowledge.topics),
            model_name=self.encoder.model_name,
            encoder=self.encoder.kind,
            index_kind=snapshot.stored.vectors.kind,
            index_size_bytes=snapshot.stored.size_bytes,
            started_at=self.started_at,
            last_reload_at=self.last_reload_at,
            last_reload_by=self.last_reload_by,
            median_latency_ms=statistics.median(latencies) if latencies else None,
        )

    # -- answering ------------------------------------------------------------------------

    def answer(self, question: str, k: int | None = None) -> Answer:
        """Answer one question. Never raises on odd input: empty or unrelated text is declined."""
        return self.answer_many([question], k)[0]

    def answer_many(self, questions: Sequence[str], k: int | None = None) -> list[Answer]:
        """Answer several questions with one encoder call (the micro-batch path)."""
        started = time.perf_counter()
        k = k or self.settings.top_k
        snapshot = self._snapshot
        keys = [AnswerCache.key(snapshot.version, q, k) for q in questions]
        answers: list[Answer | None] = [self._cache.get(key) for key in keys]
        todo = [i for i, answer in enumerate(answers) if answer is None]
        if todo:
            cleaned = [_clean(questions[i]) for i in todo]
            corrected = [correct_query(q, snapshot.retriever.lexical) if q else q for q in cleaned]
            vectors = self._encode([q for q in corrected if q])
            rows = iter(vectors)
            for i, query in zip(todo, corrected, strict=True):
                vector = next(rows) if query else None
                answer = self._answer_one(snapshot, questions[i], query, vector, k)
                self._cache.put(keys[i], answer)
                answers[i] = answer
        elapsed = (time.perf_counter() - started) * 1000
        self._latencies.extend([elapsed] * len(questions))
        return [
            replace(answer, question=question, latency_ms=elapsed)
            for question, answer in zip(questions, answers, strict=True)
            if answer is not None
        ]

    def _encode(self, queries: list[str]) -> np.ndarray:
        if not queries:
            return np.zeros((0, self.encoder.dimension), dtype=np.float32)
        return self.encoder.encode(queries, batch_size=max(1, len(queries)))

    def _answer_one(self, snapshot: Snapshot, question: str, query: str, vector: np.ndarray | None, k: int) -> Answer:
        if vector is None:
            return compose_answer(
                question, [], k=k, answered=False, retriever=snapshot.retriever, storylines=snapshot.storylines,
                time=None, kb_version=snapshot.version, suggestion_pool=snapshot.suggestion_pool,
            )
        time_ref = find_time_reference(query)
        candidates = snapshot.retriever.search(vector, query, limit=max(k * 3, 15), time=time_ref)
        return compose_answer(
            question, candidates, k=k, answered=self._confident(candidates), retriever=snapshot.retriever,
            storylines=snapshot.storylines, time=time_ref, past=asks_about_the_past(question),
            kb_version=snapshot.version,
            suggestion_pool=snapshot.suggestion_pool,
        )

    def _confident(self, candidates: Sequence[Candidate]) -> bool:
        return bool(candidates) and max(c.dense for c in candidates[:3]) >= self.min_score

    async def answer_async(self, question: str, k: int | None = None) -> Answer:
        """Answer off the event loop; concurrent questions share one encoder call."""
        k = k or self.settings.top_k
        cached = self._cache.get(AnswerCache.key(self._snapshot.version, question, k))
        if cached is not None:
            self._latencies.append(0.0)
            return replace(cached, question=question, latency_ms=0.0)
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.loop is not loop:
            self._batcher = _MicroBatcher(self, loop)
        return await self._batcher.submit(question, k)

    # -- reloading ------------------------------------------------------------------------

    def reload_sync(self, actor: str | None = None) -> ReloadReport:
        """Validate the knowledge files, build incrementally, swap. Serialized; never raises on bad files."""
        with self._reload_lock:
            started = time.perf_counter()
            old = self._snapshot
            result = load_knowledge(self.settings.knowledge_dir)
            if result.knowledge is None:
                log.warning("reload by %s rejected: %d error(s)", actor or "?", len(result.errors))
                return ReloadReport(
                    ok=False, kb_version=old.version, warnings=tuple(result.warnings), errors=tuple(result.errors),
                    duration_s=time.perf_counter() - started, actor=actor,
                )
            stored, build = open_or_build(result.knowledge, self.encoder, self.settings.index_dir)
            if build.reused == len(stored.ids) and not (build.added or build.changed or build.removed):
                build = _diff(old.knowledge, result.knowledge, build)
            self._swap(_snapshot(self.settings, stored), build)
            self.last_reload_at = dt.datetime.now(dt.UTC)
            self.last_reload_by = actor
            report = ReloadReport(
                ok=True, kb_version=stored.knowledge.version, added=build.added, changed=build.changed,
                removed=build.removed, reused=build.reused, warnings=tuple(result.warnings),
                duration_s=time.perf_counter() - started, actor=actor,
            )
            log.info("reload by %s: version %s, +%d ~%d -%d", actor or "?", report.kb_version,
                     len(report.added), len(report.changed), len(report.removed))
            return report

    async def reload(self, actor: str | None = None) -> ReloadReport:
        return await asyncio.to_thread(self.reload_sync, actor)

    def refresh_if_changed_sync(self) -> bool:
        """Pick up a snapshot another process made current in the shared index folder."""
        name = current_snapshot_name(self.settings.index_dir)
        if name is None or name == self._snapshot.stored.folder.name or self.reload_in_progress:
            return False
        with self._reload_lock:
            try:
                stored = load_current(self.settings.index_dir, self.encoder)
            except IndexUnusableError as exc:
                log.warning("shared index changed but cannot be loaded: %s", exc)
                return False
            self._swap(_snapshot(self.settings, stored), BuildReport(reused=len(stored.ids)))
            self.last_reload_at = dt.datetime.now(dt.UTC)
            self.last_reload_by = "another process"
        log.info("picked up index snapshot %s made by another process", name)
        return True

    async def refresh_if_changed(self) -> bool:
        return await asyncio.to_thread(self.refresh_if_changed_sync)

    def _swap(self, snapshot: Snapshot, build: BuildReport) -> None:
        self._snapshot = snapshot
        self.last_build = build
        self._cache.clear()


def _snapshot(settings: Settings, stored: StoredIndex) -> Snapshot:
    return Snapshot.from_stored(stored, dictionary_words(settings.embedding_model))


def _clean(question: str) -> str:
    return " ".join(question.split())[:MAX_QUESTION_CHARS]


def _diff(old: KnowledgeBase, new: KnowledgeBase, build: BuildReport) -> BuildReport:
    """What changed between two knowledge bases, when the index itself was reused as it stood."""
    added = tuple(pid for pid in new.passages if pid not in old.passages)
    removed = tuple(pid for pid in old.passages if pid not in new.passages)
    changed = tuple(
        pid for pid in new.passages
        if pid in old.passages and old.passages[pid].to_dict() != new.passages[pid].to_dict()
    )
    return replace(build, added=added, removed=removed, changed=changed)


class _MicroBatcher:
    """Collects questions for a few milliseconds and answers them with one encoder call."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop
        self._pending: list[tuple[str, int, asyncio.Future[Answer]]] = []
        self._in_flight: dict[tuple[str, int], asyncio.Future[Answer]] = {}
        self._flush_scheduled = False

    async def submit(self, question: str, k: int) -> Answer:
        key = (same_question_key(question), k)
        shared = self._in_flight.get(key)
        if shared is not None:
            return replace(await asyncio.shield(shared), question=question)
        future: asyncio.Future[Answer] = self.loop.create_future()
        self._in_flight[key] = future
        future.add_done_callback(lambda _: self._in_flight.pop(key, None))
        self._pending.append((question, k, future))
        if len(self._pending) >= self.engine.settings.max_batch:
            self._start_flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_later(self.engine.settings.batch_wait_ms / 1000, self._start_flush)
        return await asyncio.shield(future)

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            self.loop.create_task(self._flush(batch))

    async def _flush(self, batch: list[tuple[str, int, asyncio.Future[Answer]]]) -> None:
        by_k: dict[int, list[tuple[str, asyncio.Future[Answer]]]] = {}
        for question, k, future in batch:
            by_k.setdefault(k, []).append((question, future))
        for k, items in by_k.items():
            try:
                answers = await asyncio.to_thread(self.engine.answer_many, [q for q, _ in items], k)
            except Exception as exc:  # delivered to every waiter, who re-raises it
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(items, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

