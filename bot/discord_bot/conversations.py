"""Conversation memory for follow-up questions: in memory only, bounded, forgotten after an hour of silence.

Three things are remembered, each capped (least recently used goes first):

* **conversations**, keyed by a thread or DM channel id: the last few questions asked there, which
  become the ``context`` of the next one. A conversation silent for ``idle_seconds`` is forgotten.
* **answers**, keyed by the id of a message the bot sent: the questions that led to that answer (its
  own question last). A reply to that message follows up on them, however long ago it was sent:
  the reply says exactly what it follows up on.
* **threads** started from one of the bot's answers: the places where a mention of the bot (or any
  message, in a server that turned on ``/settings every_thread_message``) continues the thread's
  conversation.

Nothing here touches Discord or the engine, so the CLI's ``chat`` keeps its context the same way.
A restart forgets everything.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.core.models import Answer

MAX_QUESTIONS = 5
IDLE_SECONDS = 3600.0
MAX_CONVERSATIONS = 10_000
MAX_ANSWERS = 20_000  # about 15 MB at worst: one new question (at most 500 characters) per answer

#: Declines whose question is no context for the next one: "thanks!" or a fragment nobody could place.
FORGETTABLE_DECLINES = frozenset({"not_a_question", "not_understood"})

Clock = Callable[[], float]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def worth_remembering(answer: Answer) -> bool:
    """Whether a question becomes context for the next one.

    Answered questions do, and so do declines that still name a subject (out of scope, not covered:
    "and in 2022?" after a World Cup question is still about the World Cup). A greeting or a
    fragment the bot could not place would only mislead the next follow-up.
    """
    return bool(answer.question.strip()) and answer.decline_reason not in FORGETTABLE_DECLINES


def extend(context: Sequence[str], question: str, limit: int = MAX_QUESTIONS) -> tuple[str, ...]:
    """``context`` with ``question`` added last, keeping the newest ``limit`` questions."""
    return (*context, question)[-limit:] if limit > 0 else ()


class LruMap(Generic[K, V]):
    """A dict that drops its least recently used entry when it grows past ``capacity``."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Conversation:
    """The last few questions asked in one place, and when the last one came."""

    questions: tuple[str, ...] = ()
    last_active: float = field(default=0.0)


class ConversationMemory:
    """Every conversation the bot is part of, bounded in length, count and time (see the module doc)."""

    def __init__(
        self,
        *,
        max_questions: int = MAX_QUESTIONS,
        idle_seconds: float = IDLE_SECONDS,
        max_conversations: int = MAX_CONVERSATIONS,
        max_answers: int = MAX_ANSWERS,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_questions = max_questions
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._conversations: LruMap[int, Conversation] = LruMap(max_conversations)
        self._answers: LruMap[int, tuple[str, ...]] = LruMap(max_answers)
        self._threads: LruMap[int, bool] = LruMap(max_conversations)

    # -- conversations (threads, DM channels) ------------------------------------------------
    def context(self, key: int) -> tuple[str, ...]:
        """The questions asked in this conversation, oldest first; () if none or fallen silent."""
        conversation = self._conversations.get(key)
        if conversation is None:
            return ()
        if self.clock() - conversation.last_active >= self.idle_seconds:
            self._conversations.pop(key)
            return ()
        return conversation.questions

    def record(self, key: int, question: str, *, remember: bool = True) -> tuple[str, ...]:
        """Note that ``question`` was asked here (the silence ends either way); add it to the context
        when ``remember``. Returns the conversation's questions afterwards."""
        questions = self.context(key)
        if remember:
            questions = extend(questions, question, self.max_questions)
        self._conversations.put(key, Conversation(questions, self.clock()))
        return questions

    def start(self, key: int, questions: Sequence[str]) -> None:
        """Begin (or restart) a conversation with these questions as its context."""
        self._conversations.put(key, Conversation(tuple(questions)[-self.max_questions:], self.clock()))

    def forget(self, key: int) -> None:
        self._conversations.pop(key)

    @property
    def conversation_count(self) -> int:
        return len(self._conversations)

    # -- answers (replies) -------------------------------------------------------------------
    def remember_answer(self, message_id: int, questions: Sequence[str]) -> None:
        """The bot sent ``message_id`` answering the last of ``questions``; a reply to it follows up on them."""
        self._answers.put(message_id, tuple(questions)[-self.max_questions:])

    def answer_context(self, message_id: int) -> tuple[str, ...] | None:
        """The questions behind one of the bot's answers, or None if it is not (or no longer) known."""
        return self._answers.get(message_id)

    # -- threads started from an answer ------------------------------------------------------
    def open_thread(self, thread_id: int, questions: Sequence[str]) -> None:
        """A thread was started from one of the bot's answers: its conversation begins with them."""
        self._threads.put(thread_id, True)
        self.start(thread_id, questions)

    def is_answer_thread(self, channel_id: int) -> bool:
        """True for a thread started from one of the bot's answers (by ``/ask thread`` or by hand:
        Discord gives a thread started from a message that message's id)."""
        if channel_id in self._threads:
            self._threads.get(channel_id)  # keep it fresh
            return True
        questions = self._answers.get(channel_id)
        if questions is None:
            return False
        self.open_thread(channel_id, questions)
        return True
