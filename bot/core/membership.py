"""False premises about who joined or left what: "When did Japan sign the ILRS?", "Why did Canada
pull out of the Gateway?". The knowledge base's own sentences are the evidence: if no sentence on
the subject names the country together with joining (or leaving), the premise is not supported."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.models import Passage, Premise
from bot.core.names import COUNTRIES
from bot.core.retrieval import STOPWORDS, Candidate
from bot.core.storylines import Storylines
from bot.core.text import split_sentences, tokenize
from bot.core.understand import Query

_JOIN = re.compile(r"\b(?:sign(?:s|ed|ing|atory|atories)?|join(?:s|ed|ing)?|ratif(?:y|ies|ied)|accede[ds]?|acceded|"
                   r"accession|member(?:s|ship)?|partner(?:s|ship)?|part(?:y|ies)|adhere[ds]?)\b", re.IGNORECASE)
_LEAVE = re.compile(r"\b(?:leav(?:e|es|ing)|left|withdr(?:aw|aws|ew|awn|awal)|pull(?:s|ed)?\s+out|quit(?:s)?|"
                    r"exit(?:s|ed)?|drop(?:s|ped)?\s+out|abandon(?:s|ed)?)\b", re.IGNORECASE)
_DENIED = re.compile(r"\b(?:not|never|no longer|declined|refused|yet to|has no|have no|outside)\b", re.IGNORECASE)
_OBJECT = re.compile(
    r"\b(?:sign|join|ratify|accede to|leave|left|withdraw from|pull out of|quit|exit)\s+(?P<what>.+?)\s*[?.!]*$",
    re.IGNORECASE,
)
NEARBY = 3


@dataclass(frozen=True)
class MembershipClaim:
    country: str  # as the question wrote it
    leaving: bool  # "left" rather than "joined"
    subject: str  # what was joined or left, as the question wrote it


def membership_claim(query: Query) -> MembershipClaim | None:
    """A question taking for granted that a country joined (or left) something."""
    if query.presupposes != "event":
        return None
    leaving = bool(_LEAVE.search(query.asked))
    if not leaving and not _JOIN.search(query.asked):
        return None
    countries = _country_names(query.asked)
    subject = _OBJECT.search(query.asked)
    if len(countries) != 1 or subject is None:
        return None
    return MembershipClaim(countries[0], leaving, subject.group("what"))


def _country_names(text: str) -> list[str]:
    """Country names as written, neighbouring words joined ("Saudi Arabia")."""
    words = re.findall(r"[\w'’-]+", text)
    names: list[str] = []
    previous_was_country = False
    for word in words:
        is_country = word.casefold() in COUNTRIES
        if is_country and previous_was_country:
            names[-1] = f"{names[-1]} {word}"
        elif is_country:
            names.append(word)
        previous_was_country = is_country
    return names


def unsupported_membership(
    query: Query, candidates: Sequence[Candidate], storylines: Storylines
) -> tuple[Premise, Passage] | None:
    """The correction and the current position, when nothing on the subject supports the claim."""
    claim = membership_claim(query)
    if claim is None or not candidates:
        return None
    topics = {c.passage.topic for c in candidates[:NEARBY]}
    country = tokenize(claim.country)
    verb = _LEAVE if claim.leaving else _JOIN
    on_subject = [p for p in storylines.passages.values() if p.topic in topics]
    subject = {t for t in tokenize(claim.subject) if t not in STOPWORDS}
    for passage in on_subject:
        names = set(tokenize(" ".join([passage.title, *passage.aliases])))
        for sentence in split_sentences(passage.text):
            words = set(tokenize(sentence))
            about_it = not subject or bool(subject & (words | names))
            if set(country) <= words and about_it and verb.search(sentence) and not _DENIED.search(sentence):
                return None
    head = max((storylines.latest(c.passage) for c in candidates[:NEARBY]), key=lambda p: (p.date, p.id))
    newest = max((p.date for p in on_subject), default=head.date)
    action = "has left or withdrawn from" if claim.leaving else "has signed or joined"
    note = f"No: as of {newest:%B %Y}, nothing in my sources says {claim.country} {action} {claim.subject}."
    return Premise(False, note, newest), head
