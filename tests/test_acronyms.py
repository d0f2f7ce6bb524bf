"""Acronyms read off the knowledge base's aliases, and spelled out for the encoder."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.core.acronyms import acronyms_of, spell_out_acronyms
from bot.core.models import Passage, Source
from bot.core.retrieval import LexicalIndex


def _aliased(pid: str, *aliases: str) -> Passage:
    source = Source("Example News", "A headline", "https://example.org/a")
    return Passage(pid, "Title", "Text.", dt.date(2025, 1, 1), source, "topic", Path("topic.yaml"), aliases=aliases)


def test_an_acronym_is_read_off_the_alias_whose_initials_it_spells() -> None:
    passages = [_aliased("ost", "OST", "Outer Space Treaty", "space law"),
                _aliased("paros", "PAROS", "prevention of an arms race in outer space"),
                _aliased("nasa", "NASA", "space agency")]  # no alias spells it out
    assert acronyms_of(passages) == {"ost": "Outer Space Treaty", "paros": "prevention of an arms race in outer space"}


def test_an_acronym_is_spelled_out_once_and_not_when_the_question_already_says_it() -> None:
    acronyms = LexicalIndex([_aliased("ost", "OST", "Outer Space Treaty")]).acronyms
    assert spell_out_acronyms("What is the OST?", acronyms) == "What is the OST? (Outer Space Treaty)"
    assert spell_out_acronyms("is the OST the outer space treaty", acronyms) == "is the OST the outer space treaty"
    assert spell_out_acronyms("What is the ISS?", acronyms) == "What is the ISS?"
