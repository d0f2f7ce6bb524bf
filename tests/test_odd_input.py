"""Issue 9, defect 1: odd input never reaches the tokenizer as it came (the real model's tokenizer
rejects lone surrogates with a TypeError), so no question can stop the engine or the stream."""

from __future__ import annotations

import pytest

from bot.core.embedding import Encoder
from bot.core.engine import Engine

SURROGATES = "When is Russia leaving the ISS? \udcff\udcfe bad \udcc3("


def test_the_real_tokenizer_rejects_lone_surrogates_so_the_engine_must_clean_them(real_encoder: Encoder) -> None:
    with pytest.raises(TypeError):
        real_encoder.encode([SURROGATES])


@pytest.mark.parametrize("text", [SURROGATES, "\ud800", "\x00\x1b[31m When is Russia leaving the ISS?", "\u202e" * 50])
def test_the_engine_answers_text_with_surrogates_and_control_characters(shipped_engine: Engine, text: str) -> None:
    answer = shipped_engine.answer(text)
    assert answer.question == text


def test_a_batch_with_one_garbled_question_answers_every_question(shipped_engine: Engine) -> None:
    questions = ["When is Russia leaving the ISS?", SURROGATES, "When is Russia leaving the ISS?"]
    answers = shipped_engine.answer_many(questions)
    assert [a.question for a in answers] == questions
    assert answers[0].answered and answers[2].answered
    assert answers[1].answered  # the readable words still ask the question
