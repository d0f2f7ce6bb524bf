"""The answer engine: an immutable snapshot behind an atomic swap, reloads, the cache and batching.

A question runs through the pipeline's stages in order (understand, retrieve, judge, compose), on
whichever snapshot is current when it starts, so a reload never disturbs one in flight. Reloads are
serialized, run on the engine's own executor, and leave the old snapshot serving when the new
knowledge files do not validate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from bot.core.cache import AnswerCache, VectorCache, cache_key
from bot.core.config import EngineSettings
from bot.core.embedding import Encoder, dictionary_words
from bot.core.encoders import load_encoder
from bot.core.judge import MODEL_FILE, JudgeModel
from bot.core.knowledge import KnowledgeBase, load_knowledge
from bot.core.knowledge_cache import CACHE_FILE
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
from bot.core.pipeline import answer_in_context, question_text
from bot.core.snapshot import Snapshot, knowledge_diff
from bot.core.store import IndexUnusableError, StoredIndex, current_snapshot_name, load_current, open_or_build
from bot.core.stored_index import snapshot_folders
from bot.core.understand import understand

if TYPE_CHECKING:
    from bot.core.batching import MicroBatcher

log = logging.getLogger(__name__)

LATENCY_WINDOW = 1_000
EXECUTOR_THREADS = 2
PROTOTYPE_CACHE = "prototypes"


class KnowledgeError(Exception):
    """The knowledge files do not validate; ``issues`` names every problem."""

    def __init__(self, issues: Sequence[ValidationIssue]) -> None:
        self.issues = list(issues)
        super().__init__(f"{len(self.issues)} error(s) in the knowledge files")


class Engine:
    """Answers questions from the current snapshot; reloads build a new one and swap it in."""

    def __init__(self, settings: EngineSettings, encoder: Encoder, snapshot: Snapshot, build: BuildReport) -> None:
        self.settings = settings
        self.encoder = encoder
        self._snapshot = snapshot
        self.last_build = build
        self.started_at = dt.datetime.now(dt.UTC)
        self.last_reload_at: dt.datetime | None = None
        self.last_reload_by: str | None = None
        self.executor = ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="spacebot-engine")
        self._reload_lock = threading.Lock()
        self._cache = AnswerCache(settings.cache_size)
        self._vectors = VectorCache()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._batcher: MicroBatcher | None = None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def open(
        cls, settings: EngineSettings, encoder: Encoder | None = None, judge_model: JudgeModel | None = None
    ) -> Engine:
        """Load the knowledge base and the matching index, building what is missing. Blocks for seconds."""
        result = load_knowledge(settings.knowledge_dir, cache_file=settings.index_dir / CACHE_FILE)
        for warning in result.warnings:  # for moderators: `spacebot validate` and /kb reload show them
            log.info("%s", warning)
        if result.knowledge is None and not snapshot_folders(settings.index_dir):
            raise KnowledgeError(result.errors)  # nothing to fall back on: fail before loading a model
        judge_model = judge_model or JudgeModel.load(settings.judge_model or MODEL_FILE)
        encoder = encoder or load_encoder(settings)
        if result.knowledge is None:
            return cls._open_from_saved_index(settings, encoder, judge_model, result.errors)
        stored, report = open_or_build(result.knowledge, encoder, settings.index_dir)
        return cls(settings, encoder, _snapshot(settings, stored, encoder, judge_model), report)

    @classmethod
    def _open_from_saved_index(
        cls, settings: EngineSettings, encoder: Encoder, judge_model: JudgeModel, errors: list[ValidationIssue]
    ) -> Engine:
        """Broken files at start-up: serve the last good index if there is one, else fail clearly."""
        try:
            stored = load_current(settings.index_dir, encoder)
        except IndexUnusableError:
            raise KnowledgeError(errors) from None
        for error in errors:
            log.error("knowledge file error (serving the last good index): %s", error)
        snapshot = _snapshot(settings, stored, encoder, judge_model)
        return cls(settings, encoder, snapshot, BuildReport(reused=len(stored.ids)))

    def close(self) -> None:
        self._cache.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- reading --------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def knowledge(self) -> KnowledgeBase:
        return self._snapshot.knowledge

    @property
    def scope(self) -> str:
        return self._snapshot.evidence.prototypes.scope.summary

    @property
    def reload_in_progress(self) -> bool:
        return self._reload_lock.locked()

    def passage(self, passage_id: str) -> Passage | None:
        return self._snapshot.knowledge.passages.get(passage_id.strip())

    def topics(self) -> list[TopicSummary]:
        return [TopicSummary(t.slug, t.title, len(t.passage_ids)) for t in self.knowledge.topics.values()]

    def suggest(self, text: str, limit: int = 25) -> list[Suggestion]:
        """Autocomplete entries: example questions, passage titles and ids. Cheap: runs on any thread."""
        from bot.core.suggest import suggest  # here: rapidfuzz is not needed to answer

        return suggest(self.knowledge, text, limit)

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

    def answer(self, question: str, k: int | None = None, context: Sequence[str] = ()) -> Answer:
        """Answer one question. Never raises on odd input: empty, garbled or unrelated text is declined."""
        return self.answer_many([question], k, [tuple(context)])[0]

    def answer_many(
        self, questions: Sequence[str], k: int | None = None, contexts: Sequence[Sequence[str]] | None = None
    ) -> list[Answer]:
        """Answer several questions with one encoder call (the micro-batch path)."""
        started = time.perf_counter()
        k = k or self.settings.top_k
        snapshot = self._snapshot
        contexts = [tuple(c) for c in contexts] if contexts is not None else [()] * len(questions)
        keys = [cache_key(snapshot.version, str(q), k, c) for q, c in zip(questions, contexts, strict=True)]
        answers: list[Answer | None] = [self._cache.get(key) for key in keys]
        todo = [i for i, answer in enumerate(answers) if answer is None]
        if todo:
            asked = [questions[i] for i in todo]
            fresh = answer_in_context(snapshot, self._encode, asked, [contexts[i] for i in todo], k)
            for i, answer in zip(todo, fresh, strict=True):
                self._cache.put(keys[i], answer)
                answers[i] = answer
        elapsed = (time.perf_counter() - started) * 1000
        self._latencies.extend([elapsed] * len(questions))
        return [
            replace(answer, question=str(question), latency_ms=elapsed)  # type: ignore[arg-type]
            for question, answer in zip(questions, answers, strict=True)
        ]

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.encoder.dimension), dtype=np.float32)
        vectors = self.encoder.encode(texts, batch_size=max(1, len(texts)))
        self._vectors.put_many(texts, vectors)
        return vectors

    def question_vector(self, question: str) -> np.ndarray:
        """The vector the answer path gave ``question`` (as it read it): reused if encoded lately."""
        recent = self._vectors.get(question)  # most questions are encoded as asked: no need to read them again
        if recent is not None:
            return recent
        text = question_text(understand(str(question), self._snapshot.retriever.lexical))
        recent = self._vectors.get(text)
        return recent if recent is not None else self._encode([text])[0]

    async def answer_async(self, question: str, k: int | None = None, context: Sequence[str] = ()) -> Answer:
        """Answer on the engine's executor; concurrent questions share one encoder call."""
        k = k or self.settings.top_k
        cached = self._cache.get(cache_key(self._snapshot.version, str(question), k, tuple(context)))
        if cached is not None:
            self._latencies.append(0.0)
            return replace(cached, question=question, latency_ms=0.0)
        from bot.core.batching import MicroBatcher  # here: ``spacebot ask`` never needs it

        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.loop is not loop:
            self._batcher = MicroBatcher(
                self.answer_many, loop, self.executor,
                wait_s=self.settings.batch_wait_ms / 1000, max_batch=self.settings.max_batch,
            )
        return await self._batcher.submit(question, k, tuple(context))

    # -- reloading ------------------------------------------------------------------------

    def reload_sync(self, actor: str | None = None) -> ReloadReport:
        """Validate the knowledge files, build incrementally, swap. Serialized; never raises on bad files."""
        with self._reload_lock:
            started = time.perf_counter()
            old = self._snapshot
            result = load_knowledge(self.settings.knowledge_dir, cache_file=self.settings.index_dir / CACHE_FILE)
            if result.knowledge is None:
                log.warning("reload by %s rejected: %d error(s)", actor or "?", len(result.errors))
                return ReloadReport(
                    ok=False, kb_version=old.version, warnings=tuple(result.warnings), errors=tuple(result.errors),
                    duration_s=time.perf_counter() - started, actor=actor,
                )
            stored, build = open_or_build(result.knowledge, self.encoder, self.settings.index_dir)
            if build.reused == len(stored.ids) and not (build.added or build.changed or build.removed):
                build = knowledge_diff(old.knowledge, result.knowledge, build)
            self._swap(_snapshot(self.settings, stored, self.encoder, old.judge_model), build, actor)
            report = ReloadReport(
                ok=True, kb_version=stored.knowledge.version, added=build.added, changed=build.changed,
                removed=build.removed, reused=build.reused, warnings=tuple(result.warnings),
                duration_s=time.perf_counter() - started, actor=actor,
            )
            log.info("reload by %s: version %s, +%d ~%d -%d", actor or "?", report.kb_version,
                     len(report.added), len(report.changed), len(report.removed))
            return report

    async def reload(self, actor: str | None = None) -> ReloadReport:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.reload_sync, actor)

    def refresh_if_changed_sync(self) -> bool:
        """Pick up a snapshot another process made current in the shared index folder."""
        if not self._reload_lock.acquire(blocking=False):
            return False  # a local reload is running; it will make its own snapshot current
        try:
            name = current_snapshot_name(self.settings.index_dir)
            if name is None or name == self._snapshot.stored.folder.name:
                return False
            try:
                stored = load_current(self.settings.index_dir, self.encoder)
            except IndexUnusableError as exc:
                log.warning("shared index changed but cannot be loaded: %s", exc)
                return False
            if stored.folder.name == self._snapshot.stored.folder.name:
                return False
            snapshot = _snapshot(self.settings, stored, self.encoder, self._snapshot.judge_model)
            self._swap(snapshot, BuildReport(reused=len(stored.ids)), "another process")
        finally:
            self._reload_lock.release()
        log.info("picked up index snapshot %s made by another process", name)
        return True

    async def refresh_if_changed(self) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.refresh_if_changed_sync)

    def _swap(self, snapshot: Snapshot, build: BuildReport, actor: str | None) -> None:
        self._snapshot = snapshot
        self.last_build = build
        self.last_reload_at = dt.datetime.now(dt.UTC)
        self.last_reload_by = actor
        self._cache.clear()


def _snapshot(settings: EngineSettings, stored: StoredIndex, encoder: Encoder, judge_model: JudgeModel) -> Snapshot:
    return Snapshot.build(
        stored, encoder, judge_model, dictionary=dictionary_words(settings.embedding_model),
        cache_dir=settings.index_dir / PROTOTYPE_CACHE,
    )
