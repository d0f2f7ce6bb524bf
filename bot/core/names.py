"""Names of countries and organisations people ask about, and how to find named things in a question."""

from __future__ import annotations

import re

from bot.core.retrieval import STOPWORDS
from bot.core.text import tokenize


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


COUNTRIES = word_set(
    "afghanistan algeria angola argentina armenia australia austria azerbaijan bahrain bangladesh belarus belgium "
    "bolivia brazil bulgaria canada chile china colombia croatia cyprus czechia denmark ecuador egypt estonia "
    "ethiopia finland france germany greece hungary iceland india indonesia iran iraq ireland israel italy japan "
    "jordan kazakhstan kenya korea latvia lithuania luxembourg malaysia malta mexico mongolia morocco nepal "
    "netherlands nigeria norway oman pakistan panama peru philippines poland portugal qatar romania russia rwanda "
    "senegal serbia singapore slovakia slovenia spain sweden switzerland thailand turkey uae ukraine uruguay "
    "uzbekistan venezuela vietnam zimbabwe usa us america britain uk england saudi arabia emirates"
)
ORGANISATIONS = word_set(
    "nasa roscosmos esa jaxa isro cnsa csa spacex boeing axiom vast starlab congress senate house pentagon fcc itu "
    "un noaa faa dod nato eu northrop grumman lockheed blue origin"
)
_CAPITALIZED = re.compile(r"(?<![.?!]\s)(?<!^)\b([A-Z][\w'’-]*(?:-\d+)?|\d{4})\b")


def named_terms(text: str) -> frozenset[str]:
    """Tokens that name something: countries, organisations, capitalized words past the first, years."""
    names = {t for t in tokenize(text) if t in COUNTRIES or t in ORGANISATIONS}
    for match in _CAPITALIZED.finditer(text.strip()):
        names.update(t for t in tokenize(match.group(1)) if t not in STOPWORDS)
    return frozenset(names)
