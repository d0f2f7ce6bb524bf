"""Small text utilities shared by validation and retrieval: sentences, tokens, dates in questions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ABBREVIATIONS = frozenset(
    {"u.s", "u.n", "u.k", "e.g", "i.e", "dr", "mr", "mrs", "ms", "st", "no", "vs", "etc", "jr", "sr",
     "gen", "lt", "col", "sen", "rep", "inc", "corp", "co", "approx", "jan", "feb", "mar", "apr",
     "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt", "ft", "fig", "art", "arts"}
)
_SENTENCE_END = re.compile(r"([.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_TOKEN = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*", re.UNICODE)
_ASCII_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

MONTHS = {
    name: number
    for number, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
         ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
         ("october", "oct"), ("november", "nov"), ("december", "dec")],
        start=1,
    )
    for name in names
}
_TIME_REFERENCE = re.compile(
    r"\b(?:in|during|as of|back in|around|from|early|late|mid|of|at the (?:start|end) of)"
    r"[\s-]+(?:(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?\s+)?"
    r"(?P<year>(?:19|20)\d\d)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(?:19|20)\d\d")
_SINCE = re.compile(r"\b(?:since|ever since|after)\s+(?:(?:[a-z]+\.?)\s+)?(?:19|20)\d\d\b", re.IGNORECASE)
_BARE_MONTH_YEAR = re.compile(
    r"\b(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?\s+(?P<year>(?:19|20)\d\d)\b",
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences, keeping abbreviations such as "U.S." and "Dr." intact."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start:match.end()].strip()
        words = candidate.rstrip("\"'”’)] ").rsplit(maxsplit=1) if candidate else [""]
        last_word = words[-1].rstrip(".!?").lstrip("\"'“‘([").lower()
        if match.group(1) == "." and (last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word)):
            continue
        sentences.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def normalize(text: str) -> str:
    """Lower-case, accent-folded text for lexical matching."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def tokenize(text: str) -> list[str]:
    if text.isascii():  # the same tokens: on ASCII, [^\W_] is [A-Za-z0-9], lower-cased; about twice as fast
        return _ASCII_TOKEN.findall(text.lower())
    return _TOKEN.findall(normalize(text))


@dataclass(frozen=True)
class TimeReference:
    """A time the question asks about: a year, optionally a month."""

    year: int
    month: int | None = None


def find_time_reference(question: str) -> TimeReference | None:
    """The period a question asks about ("in July 2022", "back in 2021"), if any. "Since 2020" asks
    about everything from then to now, so it names no period."""
    if not _YEAR.search(question):  # every pattern needs a year; most questions have none
        return None
    question = _SINCE.sub(" ", question)
    match = _TIME_REFERENCE.search(question) or _BARE_MONTH_YEAR.search(question)
    if not match:
        return None
    month = match.group("month")
    return TimeReference(int(match.group("year")), MONTHS.get(month.casefold().rstrip(".")) if month else None)


_PAST_MARKERS = re.compile(
    r"\b(did|was|were|had|originally|original|initially|formerly|former|previously|earlier|ago|used to|back then)\b",
    re.IGNORECASE,
)
_PRESENT_MARKERS = re.compile(
    r"\b(will|is|are|now|currently|current|latest|most recent|recently|newest|so far|still|rn|today|going to|gonna"
    r"|these days|anymore|yet)\b",
    re.IGNORECASE,
)


# "did NASA cancel the Gateway?" asks where things stand now, whatever its tense.
_YES_NO = re.compile(r"^(?:so|and|but|ok|okay|wait)?[\s,]*(?:did|was|were|has|have|had)\b", re.IGNORECASE)


def asks_about_the_past(question: str) -> bool:
    """True for a question about a past event ("when did India sign?"), not the current state."""
    if _YES_NO.match(question.strip()):
        return False
    return bool(_PAST_MARKERS.search(question)) and not _PRESENT_MARKERS.search(question)
