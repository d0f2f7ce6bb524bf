"""Declines and premise corrections end to end: the real engine's judge over the fixture knowledge,
through /ask and through a mention.

Each test first asks the engine itself, so a failure says whether the engine judged the question
differently (``decline_reason``, ``premise``) or the bot showed the judgement wrongly.
"""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord_harness import Harness
from fake_discord import BOT_ID, FakeUser

from bot.core.engine import Engine
from bot.core.models import Answer
from bot.discord_bot.embeds import DECLINE_TITLES

DECLINES = [
    ("hi", "not_a_question"),
    ("Who won the 2018 World Cup in Russia?", "out_of_scope"),
    # Space policy, but not in the three knowledge files these tests run on (the full knowledge base
    # declines "How much did the James Webb Space Telescope cost?" the same way).
    ("What are the FAA rules for launch licensing?", "not_covered"),
]
FALSE_PREMISE = "When did Russia quit the space station?"


def _engine(harness: Harness) -> Engine:
    engine = harness.bot.engine
    assert engine is not None
    return engine


def _declined(engine: Engine, question: str, reason: str) -> Answer:
    answer = engine.answer(question)
    assert answer.decline_reason == reason, f"the engine judged {question!r}: {answer.decline_reason}"
    assert not answer.answered and answer.message
    return answer


def _assert_shows_decline(embed: dict[str, Any], answer: Answer) -> None:
    description = embed["description"]
    assert embed["title"] == DECLINE_TITLES[str(answer.decline_reason)]
    assert description.startswith(answer.message[:80])
    shown = [line.removeprefix("• ") for line in description.splitlines() if line.startswith("• ")]
    assert shown == [suggestion[:300] for suggestion in answer.suggestions[:3]]
    assert "/topics" in description
    assert not embed.get("fields"), "a decline cites no source"


async def _mention(harness: Harness, member: FakeUser, question: str) -> dict[str, Any]:
    [reply] = await harness.say(harness.fake.user_message(member, f"<@{BOT_ID}> {question}", mention_bot=True))
    return dict(reply.body["embeds"][0])


@pytest.mark.parametrize(("question", "reason"), DECLINES)
async def test_ask_declines_with_the_reasons_title_message_suggestions_and_topics_hint(
    harness: Harness, member: FakeUser, question: str, reason: str
) -> None:
    expected = _declined(_engine(harness), question, reason)

    embed = (await harness.slash(member, "ask", {"question": question})).embed

    _assert_shows_decline(embed, expected)


@pytest.mark.parametrize(("question", "reason"), DECLINES)
async def test_mention_declines_with_the_reasons_title_message_suggestions_and_topics_hint(
    harness: Harness, member: FakeUser, question: str, reason: str
) -> None:
    expected = _declined(_engine(harness), question, reason)

    embed = await _mention(harness, member, question)

    _assert_shows_decline(embed, expected)


async def test_greeting_gets_three_example_questions_not_did_you_mean(harness: Harness, member: FakeUser) -> None:
    expected = _declined(_engine(harness), "hi", "not_a_question")

    embed = (await harness.slash(member, "ask", {"question": "hi"})).embed

    assert len(expected.suggestions) == 3
    assert sum(line.startswith("• ") for line in embed["description"].splitlines()) == 3
    assert "Did you mean" not in embed["description"]


def _corrected(engine: Engine) -> Answer:
    answer = engine.answer(FALSE_PREMISE)
    assert answer.answered and answer.premise is not None, f"no premise flagged: {answer.premise}"
    assert answer.premise.note
    return answer


def _assert_correction_first(embed: dict[str, Any], answer: Answer) -> None:
    assert answer.premise is not None
    description = embed["description"]
    note = discord.utils.escape_markdown(" ".join(answer.premise.note.split()))
    assert description.startswith(f"**{note}**\n\n")
    assert description.index(note) < description.index(answer.lead[:60])
    assert embed["fields"][0]["name"].startswith("[1] ")
    assert "confidence" in embed["footer"]["text"]


async def test_ask_false_premise_shows_the_correction_above_the_lead(harness: Harness, member: FakeUser) -> None:
    expected = _corrected(_engine(harness))

    embed = (await harness.slash(member, "ask", {"question": FALSE_PREMISE})).embed

    _assert_correction_first(embed, expected)


async def test_mention_false_premise_shows_the_correction_above_the_lead(harness: Harness, member: FakeUser) -> None:
    expected = _corrected(_engine(harness))

    embed = await _mention(harness, member, FALSE_PREMISE)

    _assert_correction_first(embed, expected)
