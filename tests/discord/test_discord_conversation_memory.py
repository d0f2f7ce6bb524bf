"""The conversation memory behind follow-ups: bounded in length, count and time, and what it keeps."""

from __future__ import annotations

import dataclasses

import discord
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_discord_embeds import answers, assert_within_limits

from bot.core.models import Answer
from bot.discord_bot.cogs.ask import questions_behind, thread_name
from bot.discord_bot.conversations import ConversationMemory, LruMap, extend, worth_remembering
from bot.discord_bot.embeds import FOLLOW_UP_PREFIX, answer_embed, asked_question, follow_up_line


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def _answer(question: str, decline_reason: str | None = None, context_used: str | None = None) -> Answer:
    return Answer(question=question, answered=decline_reason is None, lead="", passages=(), history=(),
                  suggestions=(), kb_version="v1", decline_reason=decline_reason,  # type: ignore[arg-type]
                  context_used=context_used)


# -- length, time, count --------------------------------------------------------------------------
def test_conversation_keeps_only_the_last_few_questions_oldest_first(clock: ManualClock) -> None:
    memory = ConversationMemory(max_questions=3, clock=clock)
    for n in range(5):
        memory.record(1, f"q{n}")
    assert memory.context(1) == ("q2", "q3", "q4")


def test_conversation_is_forgotten_after_the_idle_time_and_each_question_restarts_the_clock(
    clock: ManualClock,
) -> None:
    memory = ConversationMemory(idle_seconds=3600, clock=clock)
    memory.record(1, "q1")
    clock.now = 3599
    assert memory.context(1) == ("q1",)
    memory.record(1, "q2")  # silence ends here
    clock.now = 3599 + 3599
    assert memory.context(1) == ("q1", "q2")
    clock.now = 3599 + 3600
    assert memory.context(1) == ()
    assert memory.conversation_count == 0  # dropped, not just hidden


def test_question_recorded_after_expiry_starts_a_new_conversation(clock: ManualClock) -> None:
    memory = ConversationMemory(idle_seconds=10, clock=clock)
    memory.record(1, "old")
    clock.now = 10
    assert memory.record(1, "new") == ("new",)


def test_a_question_not_worth_remembering_ends_the_silence_without_joining_the_context(clock: ManualClock) -> None:
    memory = ConversationMemory(idle_seconds=10, clock=clock)
    memory.record(1, "q1")
    clock.now = 9
    memory.record(1, "thanks!", remember=False)
    clock.now = 18
    assert memory.context(1) == ("q1",)


def test_least_recently_used_conversation_goes_first_when_over_the_cap(clock: ManualClock) -> None:
    memory = ConversationMemory(max_conversations=2, clock=clock)
    memory.record(1, "a")
    memory.record(2, "b")
    memory.context(1)  # 1 is now the most recently used
    memory.record(3, "c")
    assert memory.context(1) == ("a",)
    assert memory.context(2) == ()
    assert memory.context(3) == ("c",)
    assert memory.conversation_count == 2


def test_answers_are_capped_by_lru_but_do_not_expire(clock: ManualClock) -> None:
    memory = ConversationMemory(max_answers=2, idle_seconds=10, clock=clock)
    memory.remember_answer(100, ["q1"])
    memory.remember_answer(101, ["q1", "q2"])
    clock.now = 10_000  # a reply names its answer: it needs no recent activity
    assert memory.answer_context(100) == ("q1",)
    memory.remember_answer(102, ["q3"])
    assert memory.answer_context(101) is None
    assert memory.answer_context(100) == ("q1",)


def test_remembered_answer_keeps_only_the_last_few_questions(clock: ManualClock) -> None:
    memory = ConversationMemory(max_questions=2, clock=clock)
    memory.remember_answer(100, ["q1", "q2", "q3"])
    assert memory.answer_context(100) == ("q2", "q3")


def test_lru_map_rejects_a_zero_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        LruMap[int, int](0)


# -- threads --------------------------------------------------------------------------------------
def test_opened_thread_starts_with_the_answer_questions_and_expires_like_any_conversation(clock: ManualClock) -> None:
    memory = ConversationMemory(idle_seconds=10, clock=clock)
    memory.open_thread(7, ["q1"])
    assert memory.is_answer_thread(7)
    assert memory.context(7) == ("q1",)
    clock.now = 10
    assert memory.is_answer_thread(7)  # still the bot's thread
    assert memory.context(7) == ()  # but its conversation has gone quiet


def test_thread_started_by_hand_from_an_answer_is_recognised_by_the_answer_message_id(clock: ManualClock) -> None:
    memory = ConversationMemory(clock=clock)
    memory.remember_answer(500, ["q1", "q2"])
    assert not memory.is_answer_thread(501)
    assert memory.is_answer_thread(500)
    assert memory.context(500) == ("q1", "q2")


# -- what becomes context ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reason", "remembered"),
    [(None, True), ("out_of_scope", True), ("not_covered", True), ("not_a_question", False),
     ("not_understood", False)],
)
def test_only_questions_with_a_subject_become_context(reason: str | None, remembered: bool) -> None:
    assert worth_remembering(_answer("When is Russia leaving the ISS?", reason)) is remembered


def test_blank_question_is_never_context() -> None:
    assert not worth_remembering(_answer("  "))


def test_extend_adds_last_and_keeps_the_newest() -> None:
    assert extend(("a", "b"), "c", limit=2) == ("b", "c")
    assert extend((), "a") == ("a",)


def test_thread_name_fits_discord_and_is_never_empty() -> None:
    assert len(thread_name("why " * 100)) <= 100
    assert thread_name("  ") == "Follow-up questions"


# -- the embed side ---------------------------------------------------------------------------------
def test_follow_up_line_is_small_print_with_the_earlier_question_escaped_on_one_line() -> None:
    line = follow_up_line(_answer("and Brazil?", context_used="Which *countries*\nsigned?"))
    assert line == f"-# {FOLLOW_UP_PREFIX}Which \\*countries\\* signed?\n"
    assert follow_up_line(_answer("When is Russia leaving the ISS?")) == ""


def test_declined_follow_up_still_says_what_it_followed_up_on() -> None:
    embed = answer_embed(_answer("and Brazil?", "not_covered", context_used="Who signed?"), scope="space policy")
    assert (embed.description or "").startswith(f"-# {FOLLOW_UP_PREFIX}Who signed?")


@settings(max_examples=60, deadline=None)
@given(answers, st.text(max_size=3000))
def test_answer_embed_with_a_follow_up_line_is_within_discord_limits(answer: Answer, earlier: str) -> None:
    embed = answer_embed(dataclasses.replace(answer, context_used=earlier), scope="space policy")
    assert_within_limits(embed)
    if " ".join(earlier.split()):
        assert (embed.description or "").startswith(f"-# {FOLLOW_UP_PREFIX}")


def test_asked_question_reads_only_answer_embeds() -> None:
    answer = discord.Embed(title="When is Russia leaving the ISS?")
    answer.set_footer(text="Knowledge base v1 · /source <id> shows a passage in full")
    decline = discord.Embed(title="Please ask your question in full")
    decline.set_footer(text="Knowledge base v1")
    assert asked_question(answer) == "When is Russia leaving the ISS?"
    assert asked_question(decline) is None


def test_questions_behind_reads_only_the_bot_own_messages() -> None:
    class Author:
        def __init__(self, user_id: int) -> None:
            self.id = user_id

    class Message:
        def __init__(self, author_id: int, embeds: list[discord.Embed]) -> None:
            self.author, self.embeds = Author(author_id), embeds

    embed = discord.Embed(title="When is Russia leaving the ISS?")
    embed.set_footer(text="Knowledge base v1 · /source <id> shows a passage in full")
    assert questions_behind(Message(1, [embed]), bot_id=1) == ("When is Russia leaving the ISS?",)  # type: ignore[arg-type]
    assert questions_behind(Message(2, [embed]), bot_id=1) is None  # type: ignore[arg-type]
    assert questions_behind(Message(1, []), bot_id=1) is None  # type: ignore[arg-type]
