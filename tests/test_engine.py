"""The engine (fake encoder): reloads, snapshots under concurrency, micro-batching, cache, odd input."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.core import engine as engine_module
from bot.core.engine import Engine, KnowledgeError
from bot.core.models import Answer
from bot.core.pipeline import texts_to_encode
from bot.core.understand import understand
from tests.conftest import make_settings
from tests.support.fake_encoder import FakeEncoder
from tests.support.kb import (
    DEBRIS,
    STORYLINE_LATEST,
    add_passage,
    mini_documents,
    new_passage,
    with_passage_change,
    write_documents,
    write_malformed_yaml,
    write_mini_kb,
)

ASAT = "debris-2021-11-russian-asat-test"
NEW_TEXT = "The FCC now requires satellites in low orbit to be deorbited within five years of the mission end."
QUESTIONS = [
    "When is Russia leaving the ISS?",
    "FCC five-year deorbit rule",
    "Kosmos 1408 debris",
    "lunar research station China Russia",
    "how do i bake sourdough bread",
    "What did Russia say about the ISS in July 2022?",
]
WAIT = 30  # seconds; a safety net against deadlocks, never a timing assertion


def _edit_kb(knowledge_dir: Path) -> None:
    """One changed passage, one added, one removed."""
    documents = with_passage_change(DEBRIS, text=NEW_TEXT)
    documents["space-debris.yaml"]["passages"] = [p for p in documents["space-debris.yaml"]["passages"]
                                                  if p["id"] != ASAT]
    add_passage(documents, "moon.yaml", new_passage(
        "moon-2024-05-change-6-launch", title="Chang'e-6 launches to the far side (May 2024)",
        text="China launched Chang'e-6 to return samples from the far side of the Moon.",
        date=dt.date(2024, 5, 3)))
    for path in knowledge_dir.glob("*.yaml"):
        path.unlink()
    write_documents(knowledge_dir, documents)


def _comparable(answer: Answer) -> dict[str, Any]:
    data = answer.to_dict()
    data.pop("latency_ms")
    return data


# -- opening ----------------------------------------------------------------------------------------


def test_engine_refuses_to_start_on_broken_files_without_a_saved_index(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    knowledge_dir = write_mini_kb(tmp_path / "knowledge")
    write_malformed_yaml(knowledge_dir, "broken.yaml")
    with pytest.raises(KnowledgeError) as raised:
        Engine.open(make_settings(tmp_path), fake_encoder)
    assert [issue.file for issue in raised.value.issues] == ["broken.yaml"]


def test_engine_serves_the_last_good_index_when_files_break_before_a_restart(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    knowledge_dir = write_mini_kb(tmp_path / "knowledge")
    settings = make_settings(tmp_path)
    first = Engine.open(settings, fake_encoder)
    write_malformed_yaml(knowledge_dir, "broken.yaml")
    second = Engine.open(settings, fake_encoder)
    assert second.snapshot.version == first.snapshot.version
    assert second.answer("When is Russia leaving the ISS?").passages[0].passage.id == STORYLINE_LATEST


def test_second_start_embeds_nothing_neither_passages_nor_judge_prototypes(tmp_path: Path) -> None:
    write_mini_kb(tmp_path / "knowledge")
    settings = make_settings(tmp_path)
    first_encoder, second_encoder = FakeEncoder(), FakeEncoder()
    first = Engine.open(settings, first_encoder)
    second = Engine.open(settings, second_encoder)
    passages = {p.embedded_text for p in first.knowledge.passages.values()}
    assert passages <= set(first_encoder.encoded_texts)
    assert len(passages) == 7
    assert second_encoder.encoded == 0
    assert second.snapshot.stored.folder == first.snapshot.stored.folder
    assert second.last_build.reused == 7


def test_engine_sharing_the_index_picks_up_a_snapshot_made_by_another(tmp_path: Path) -> None:
    knowledge_dir = write_mini_kb(tmp_path / "knowledge")
    settings = make_settings(tmp_path)
    builder, follower = Engine.open(settings, FakeEncoder()), Engine.open(settings, FakeEncoder())
    assert follower.refresh_if_changed_sync() is False
    _edit_kb(knowledge_dir)
    report = builder.reload_sync("moderator")
    assert report.ok
    assert follower.refresh_if_changed_sync() is True
    assert follower.snapshot.version == report.kb_version
    assert follower.answer("FCC five-year deorbit rule").lead == NEW_TEXT


class PickupPausingLock:
    """The engine's reload lock, pausing the thread named "pickup" right after its first look at the
    lock (whether it asks if a reload runs, or takes the lock), until told to go on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.paused, self.go_on = threading.Event(), threading.Event()

    def _pause_the_pickup(self) -> None:
        if threading.current_thread().name == "pickup" and not self.paused.is_set():
            self.paused.set()
            self.go_on.wait(WAIT)

    def locked(self) -> bool:
        result = self._lock.locked()
        self._pause_the_pickup()
        return result

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        acquired = self._lock.acquire(blocking, timeout)
        self._pause_the_pickup()
        return acquired

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def test_a_pickup_racing_a_local_reload_never_swaps_in_again_what_the_reload_made(tmp_path: Path) -> None:
    """The watcher's pickup checked the shared pointer and "is a reload running?" outside the reload
    lock: a local reload could run in between, and the pickup then swapped in, as another process's,
    the very snapshot that reload had just made. The moderator's reload must be the last word."""
    knowledge_dir = write_mini_kb(tmp_path / "knowledge")
    settings = make_settings(tmp_path)
    builder, engine = Engine.open(settings, FakeEncoder()), Engine.open(settings, FakeEncoder())
    _edit_kb(knowledge_dir)
    assert builder.reload_sync("another process's moderator").ok  # the shared pointer moves
    lock = PickupPausingLock()
    engine._reload_lock = lock  # type: ignore[assignment]

    pickup = threading.Thread(target=engine.refresh_if_changed_sync, name="pickup")
    pickup.start()
    assert lock.paused.wait(WAIT)
    reload = threading.Thread(target=engine.reload_sync, args=("moderator",))
    reload.start()
    reload.join(2)  # with the fix the pickup holds the lock: this reload waits for it
    lock.go_on.set()
    pickup.join(WAIT)
    reload.join(WAIT)

    assert not pickup.is_alive() and not reload.is_alive()
    assert engine.last_reload_by == "moderator"
    assert engine.answer("FCC five-year deorbit rule").lead == NEW_TEXT


# -- reloading --------------------------------------------------------------------------------------


async def test_reload_with_broken_files_keeps_the_old_snapshot_and_returns_every_error(
    mini_engine: Engine, mini_kb_dir: Path
) -> None:
    before = mini_engine.snapshot
    write_malformed_yaml(mini_kb_dir, "broken.yaml")
    documents = with_passage_change(DEBRIS, date="not a date")
    write_documents(mini_kb_dir, documents)
    report = await mini_engine.reload("moderator")
    assert report.ok is False
    assert report.kb_version == before.version
    assert {(e.file, e.passage, e.field) for e in report.errors} == {
        ("broken.yaml", None, None), ("space-debris.yaml", DEBRIS, "date")}
    assert mini_engine.snapshot is before
    answer = mini_engine.answer("When is Russia leaving the ISS?")
    assert answer.answered and answer.kb_version == before.version


async def test_successful_reload_swaps_the_snapshot_and_reports_the_diff(
    mini_engine: Engine, mini_kb_dir: Path, fake_encoder: FakeEncoder
) -> None:
    old_version = mini_engine.snapshot.version
    _edit_kb(mini_kb_dir)
    fake_encoder.reset_counts()
    report = await mini_engine.reload("moderator")
    assert report.ok, [str(e) for e in report.errors]
    assert report.changed == (DEBRIS,)
    assert report.added == ("moon-2024-05-change-6-launch",)
    assert report.removed == (ASAT,)
    assert report.reused == 5
    assert report.actor == "moderator"
    assert report.errors == ()
    assert fake_encoder.encoded == 2
    assert report.kb_version != old_version
    assert mini_engine.snapshot.version == report.kb_version
    assert mini_engine.last_reload_by == "moderator"
    answer = mini_engine.answer("FCC five-year deorbit rule")
    assert answer.kb_version == report.kb_version
    assert answer.lead == NEW_TEXT
    assert mini_engine.passage(ASAT) is None


async def test_reload_without_changes_reports_nothing_added_changed_or_removed(
    mini_engine: Engine, fake_encoder: FakeEncoder
) -> None:
    fake_encoder.reset_counts()
    report = await mini_engine.reload()
    assert report.ok
    assert (report.added, report.changed, report.removed, report.reused) == ((), (), (), 7)
    assert fake_encoder.encoded == 0


def test_reload_after_starting_from_the_saved_index_reports_no_spurious_changes(tmp_path: Path) -> None:
    """BUG: _diff compares Passage objects, whose `file` is a bare name when read back from a snapshot."""
    knowledge_dir = write_mini_kb(tmp_path / "knowledge")
    settings = make_settings(tmp_path)
    Engine.open(settings, FakeEncoder())
    broken = write_malformed_yaml(knowledge_dir, "broken.yaml")
    restarted = Engine.open(settings, FakeEncoder())  # serves the saved index while the files are broken
    broken.unlink()
    report = restarted.reload_sync("moderator")
    assert report.ok
    assert (report.added, report.changed, report.removed) == ((), (), ())


async def test_reload_clears_cached_answers_of_the_old_version(mini_engine: Engine, mini_kb_dir: Path) -> None:
    old = mini_engine.answer("FCC five-year deorbit rule")
    _edit_kb(mini_kb_dir)
    assert (await mini_engine.reload()).ok
    new = mini_engine.answer("FCC five-year deorbit rule")
    assert new.kb_version != old.kb_version
    assert new.lead == NEW_TEXT != old.lead


@pytest.fixture
def build_tracker(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Wraps the engine's ``open_or_build``: records overlap, the calling thread, and can hold a build."""
    state: dict[str, Any] = {"active": 0, "max_active": 0, "threads": [], "order": [],
                             "hold": threading.Event(), "entered": threading.Event()}
    state["hold"].set()
    lock = threading.Lock()
    real = engine_module.open_or_build

    def tracked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            state["active"] += 1
            state["max_active"] = max(state["max_active"], state["active"])
            state["threads"].append(threading.get_ident())
            state["order"].append("enter")
        state["entered"].set()
        try:
            assert state["hold"].wait(WAIT), "build was never released"
            return real(*args, **kwargs)
        finally:
            with lock:
                state["active"] -= 1
                state["order"].append("exit")

    monkeypatch.setattr(engine_module, "open_or_build", tracked)
    yield state
    state["hold"].set()


async def test_two_concurrent_reloads_are_serialized_and_both_succeed(
    mini_engine: Engine, mini_kb_dir: Path, build_tracker: dict[str, Any]
) -> None:
    _edit_kb(mini_kb_dir)
    build_tracker["hold"].clear()
    first = asyncio.ensure_future(mini_engine.reload("a"))
    second = asyncio.ensure_future(mini_engine.reload("b"))
    assert await asyncio.to_thread(build_tracker["entered"].wait, WAIT)
    build_tracker["hold"].set()
    reports = await asyncio.gather(first, second)
    assert all(r.ok for r in reports), [r.errors for r in reports]
    assert build_tracker["max_active"] == 1
    assert build_tracker["order"] == ["enter", "exit", "enter", "exit"]
    assert reports[0].kb_version == reports[1].kb_version == mini_engine.snapshot.version
    assert {frozenset(r.changed) for r in reports} >= {frozenset({DEBRIS})}


async def test_reload_runs_off_the_event_loop(
    mini_engine: Engine, mini_kb_dir: Path, build_tracker: dict[str, Any]
) -> None:
    _edit_kb(mini_kb_dir)
    build_tracker["hold"].clear()

    async def release_from_the_loop() -> None:
        await asyncio.to_thread(build_tracker["entered"].wait, WAIT)
        build_tracker["hold"].set()  # runs only if the loop is free while the build waits

    report, _ = await asyncio.gather(mini_engine.reload(), release_from_the_loop())
    assert report.ok
    assert threading.get_ident() not in build_tracker["threads"]


async def test_questions_asked_during_a_reload_are_all_answered_from_the_old_snapshot(
    mini_engine: Engine, mini_kb_dir: Path, build_tracker: dict[str, Any]
) -> None:
    old_version = mini_engine.snapshot.version
    _edit_kb(mini_kb_dir)
    build_tracker["hold"].clear()
    reload = asyncio.ensure_future(mini_engine.reload())
    assert await asyncio.to_thread(build_tracker["entered"].wait, WAIT)
    during = await asyncio.gather(*(mini_engine.answer_async(q) for q in QUESTIONS * 3))
    assert mini_engine.reload_in_progress
    build_tracker["hold"].set()
    report = await reload
    assert report.ok
    assert len(during) == len(QUESTIONS) * 3
    assert all(isinstance(a.answered, bool) and a.kb_version == old_version for a in during)
    assert sum(a.answered for a in during) >= 3 * (len(QUESTIONS) - 1)
    after = await mini_engine.answer_async("FCC five-year deorbit rule")
    assert after.kb_version == report.kb_version


class GatedEncoder(FakeEncoder):
    """Blocks while encoding one chosen question, until released."""

    def __init__(self) -> None:
        super().__init__()
        self.gate_text: str | None = None
        self.waiting = threading.Event()
        self.release = threading.Event()

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if self.gate_text is not None and self.gate_text in texts:
            self.waiting.set()
            assert self.release.wait(WAIT), "question was never released"
        return super().encode(texts, batch_size=batch_size, progress=progress)


def test_question_in_flight_during_a_swap_finishes_on_the_snapshot_it_started_with(tmp_path: Path) -> None:
    encoder = GatedEncoder()
    knowledge_dir = write_mini_kb(tmp_path / "knowledge")
    engine = Engine.open(make_settings(tmp_path), encoder)
    old_version = engine.snapshot.version
    question = "fcc five-year deorbit rule"
    encoder.gate_text = question
    results: list[Answer] = []
    asker = threading.Thread(target=lambda: results.append(engine.answer(question)))
    asker.start()
    assert encoder.waiting.wait(WAIT)
    _edit_kb(knowledge_dir)
    report = engine.reload_sync("moderator")  # completes while the question is still being encoded
    assert report.ok
    assert engine.snapshot.version != old_version
    encoder.release.set()
    asker.join(WAIT)
    assert not asker.is_alive()
    [answer] = results
    assert answer.kb_version == old_version
    assert answer.lead != NEW_TEXT
    assert answer.passages[0].passage.id == DEBRIS


# -- micro-batching and cache -----------------------------------------------------------------------


async def test_answer_async_batches_concurrent_questions_into_one_encoder_call(
    mini_engine: Engine, fake_encoder: FakeEncoder
) -> None:
    fake_encoder.reset_counts()
    answers = await asyncio.gather(*(mini_engine.answer_async(q) for q in QUESTIONS))
    assert fake_encoder.calls == 1
    assert sorted(fake_encoder.encoded_texts) == sorted(QUESTIONS)
    assert [a.question for a in answers] == QUESTIONS


async def test_answer_async_gives_the_same_answers_as_answer(tmp_path: Path, mini_engine: Engine) -> None:
    batched = await asyncio.gather(*(mini_engine.answer_async(q) for q in QUESTIONS))
    reference = Engine.open(make_settings(tmp_path / "ref", knowledge_dir=mini_engine.settings.knowledge_dir),
                                          FakeEncoder())
    single = [reference.answer(q) for q in QUESTIONS]
    assert [_comparable(a) for a in batched] == [_comparable(a) for a in single]


async def test_identical_concurrent_questions_share_one_answer(mini_engine: Engine, fake_encoder: FakeEncoder) -> None:
    fake_encoder.reset_counts()
    answers = await asyncio.gather(*(mini_engine.answer_async(QUESTIONS[0]) for _ in range(5)))
    assert fake_encoder.encoded == 1
    assert len({json.dumps(_comparable(a)) for a in answers}) == 1


def test_cache_hit_returns_the_identical_answer_without_encoding(
    mini_engine: Engine, fake_encoder: FakeEncoder
) -> None:
    first = mini_engine.answer(QUESTIONS[0])
    fake_encoder.reset_counts()
    second = mini_engine.answer(QUESTIONS[0])
    assert fake_encoder.encoded == 0
    assert _comparable(second) == _comparable(first)


async def test_async_cache_hit_returns_the_identical_answer_without_encoding(
    mini_engine: Engine, fake_encoder: FakeEncoder
) -> None:
    first = await mini_engine.answer_async(QUESTIONS[1])
    fake_encoder.reset_counts()
    second = await mini_engine.answer_async(QUESTIONS[1])
    assert fake_encoder.encoded == 0
    assert _comparable(second) == _comparable(first)


def test_different_k_is_not_served_from_the_cache_of_another_k(mini_engine: Engine) -> None:
    one = mini_engine.answer(QUESTIONS[0], k=1)
    four = mini_engine.answer(QUESTIONS[0], k=4)
    assert len(one.passages) == 1
    assert len(four.passages) > 1


def test_cached_answer_reports_the_question_as_it_was_asked(mini_engine: Engine) -> None:
    """BUG: the cache key folds case and spaces, and the hit returns the first asker's question text."""
    mini_engine.answer("When is Russia leaving the ISS?")
    again = mini_engine.answer("WHEN is russia leaving   the iss?")
    assert again.question == "WHEN is russia leaving   the iss?"


async def test_concurrent_async_answer_reports_each_question_as_it_was_asked(mini_engine: Engine) -> None:
    """BUG: the micro-batcher shares one in-flight answer between questions that differ only in case."""
    first, second = await asyncio.gather(
        mini_engine.answer_async("When is Russia leaving the ISS?"),
        mini_engine.answer_async("when is russia leaving the iss?"),
    )
    assert first.question == "When is Russia leaving the ISS?"
    assert second.question == "when is russia leaving the iss?"


def test_question_naming_a_month_with_a_unicode_lookalike_letter_is_answered_not_raised(mini_engine: Engine) -> None:
    """BUG: "auguſt 2022" (long s) reaches find_time_reference, whose MONTHS lookup raises KeyError."""
    answer = mini_engine.answer("What did Russia say about the ISS in auguſt 2022?")
    assert isinstance(answer.answered, bool)


def test_answer_many_keeps_the_order_of_the_questions(mini_engine: Engine) -> None:
    answers = mini_engine.answer_many(QUESTIONS)
    assert [a.question for a in answers] == QUESTIONS


# -- any input gives a valid answer -----------------------------------------------------------------


@pytest.fixture(scope="module")
def property_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    base = tmp_path_factory.mktemp("property")
    write_documents(base / "knowledge", mini_documents())
    return Engine.open(make_settings(base, cache_size=0), FakeEncoder())


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(question=st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=50),
))
@example(question="")
@example(question="   \n\t  ")
@example(question="x" * 10_000)
@example(question="roscosmos " * 1_000)
@example(question="Когда Россия покинет МКС?")
@example(question="中国空间站什么时候建成")
@example(question="🚀🛰️🌕👩‍🚀")
@example(question="\x00\x01\x02")
@example(question="in July 2022 in 2021 back in 1999")
@example(question="???!!!...")
def test_any_question_gets_a_valid_json_serializable_answer(property_engine: Engine, question: str) -> None:
    answer = property_engine.answer(question)
    assert isinstance(answer, Answer)
    assert isinstance(answer.answered, bool)
    assert answer.question == question
    assert len(answer.suggestions) <= 3
    if answer.answered:
        assert answer.passages and answer.lead == answer.passages[0].passage.text
    else:
        assert answer.passages == () and answer.lead == ""
    data = answer.to_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data


def test_a_question_just_answered_gives_its_vector_again_without_encoding_it(tmp_path: Path) -> None:
    """Grouping an unanswered question with similar ones needs its vector: the answer path's is reused."""
    write_mini_kb(tmp_path / "knowledge")
    encoder = FakeEncoder()
    engine = Engine.open(make_settings(tmp_path), encoder)
    engine.answer("how do i bake sourdough bread")
    encoded = encoder.encoded

    vector = engine.question_vector("how do i bake sourdough bread")

    assert encoder.encoded == encoded
    np.testing.assert_array_equal(vector, encoder.encode(["how do i bake sourdough bread"])[0])
    engine.question_vector("Who signed the Artemis Accords first?")  # never asked: encoded now
    assert encoder.encoded == encoded + 2  # the check's own encode above, then this one


def test_the_vector_of_a_question_read_otherwise_than_asked_is_the_one_its_answer_encoded(tmp_path: Path) -> None:
    """"can you explain the artemis accords" is searched as "What is artemis accords?": the vector given
    back is that text's, the one the answer path encoded (so reused), not the wording's."""
    write_mini_kb(tmp_path / "knowledge")
    encoder = FakeEncoder()
    engine = Engine.open(make_settings(tmp_path), encoder)
    asked = "can you explain the artemis accords"
    engine.answer(asked)
    encoded = encoder.encoded

    vector = engine.question_vector(asked)

    searched = texts_to_encode(understand(asked, engine.snapshot.retriever.lexical))[0]
    assert searched != asked
    assert encoder.encoded == encoded
    np.testing.assert_array_equal(vector, encoder.encode([searched])[0])
