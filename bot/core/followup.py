"""Follow-up questions: does a question lean on the conversation, and what does it mean in full?

"and Brazil?" after "Which countries signed the Artemis Accords?" becomes "Which countries signed
the Artemis Accords? Brazil"-like text the retriever can use: a named subject replaces the earlier
question's subject of the same kind (country for country, organisation for organisation); anything
else ("who leads it now?") is read together with the earlier question. The engine answers both the
question alone and the resolved one, and :func:`choose` keeps the question alone whenever it stands
on its own.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from bot.core.declines import NOT_UNDERSTOOD_TEXT
from bot.core.models import Answer
from bot.core.names import COUNTRIES, ORGANISATIONS, named_terms
from bot.core.text import tokenize
from bot.core.understand import content_terms, defined_subject, sanitize

_LEADING = re.compile(
    r"^(?:and|also|but|so|then|ok|okay|what about|how about|and what about|same for|what of)\b[\s,]*", re.IGNORECASE
)
_REFERRING = re.compile(
    r"\b(?:it|its|it's|they|them|their|theirs|that|this|those|these|he|him|his|she|her|there|too|also|either|"
    r"as well|instead|the same|then)\b",
    re.IGNORECASE,
)
# A short question ending on a verb that needs an object ("when did China sign?", "how did ESA react")
# leaves out what it is about: the conversation says what was signed.
_DANGLING_VERB = re.compile(
    r"\b(?:sign|join|ratify|react|respond|reply|agree|approve|vote|leave|quit|withdraw|pull out|say|decide|"
    r"object|comment|accede|follow)(?:ed|d|s)?\W*$",
    re.IGNORECASE,
)
# "..., and will there be people on it": a second question about what the first one named.
_SECOND_CLAUSE = re.compile(
    r"(?:,|\band\b|\bor\b)\s+(?:what|when|why|how|who|where|which|will|would|is|are|was|were|does|do|did|can|could)\b",
    re.IGNORECASE,
)
MAX_FRAGMENT_TERMS = 2


@dataclass(frozen=True)
class FollowUpPlan:
    question: str
    resolved: str | None  # the question in full, or None when there is no context to draw on
    used: str | None  # the earlier question it draws on
    dependent: bool  # it reads as a follow-up ("and Brazil?", "who leads it now?")
    refers_back: bool  # it has a word that points at something said before ("it", "they", "too")
    new_subject: bool = False  # it names something the knowledge base never mentions ("jwst", "Hubble")
    earlier_in_full: str | None = None  # the question it follows, resolved through the conversation


def plan(question: str, context: Sequence[str], known: Collection[str] = frozenset()) -> FollowUpPlan:
    """How to read ``question`` after ``context``; ``known`` holds the knowledge base's words and the
    language's ordinary words, so a term outside it is a name the knowledge base never mentions."""
    question = sanitize(question)
    earlier = [q for q in (sanitize(c) for c in context) if q]
    dependent = leans_on_context(question)
    new_subject = bool(known) and any(t not in known for t in content_terms(question))
    refers_back = dependent and bool(_REFERRING.search(question))
    if not earlier:
        return FollowUpPlan(question, None, None, dependent, refers_back, new_subject)
    full = in_full(earlier)
    return FollowUpPlan(question, resolve(question, full), earlier[-1], dependent, refers_back, new_subject, full)


def in_full(earlier: Sequence[str]) -> str:
    """The last earlier question in full: a chain of fragments ("and the Moon Agreement?" after
    "How many countries are parties to the Outer Space Treaty?") is resolved from its start."""
    full = earlier[0]
    for question in earlier[1:]:
        full = resolve(question, full) if leans_on_context(question) else question
    return full


def leans_on_context(question: str) -> bool:
    """True for a fragment that needs the conversation: "and Brazil?", "who leads it now?", "why?"."""
    terms = content_terms(question)
    if len(terms) > MAX_FRAGMENT_TERMS + 1:
        return False
    if names_its_own_subject(question):
        return False
    leaning = _LEADING.match(question) or _REFERRING.search(question) or _DANGLING_VERB.search(question)
    return bool(leaning) or len(terms) <= 1


def names_its_own_subject(question: str) -> bool:
    """"what is C3DO", "what is the Moon Agreement and who signed it", "when is Starliner flying again
    and will there be people on it": the question names what it is about, and any "it" points back
    into the question itself."""
    second_clause = _SECOND_CLAUSE.search(question)
    if second_clause and content_terms(question[:second_clause.start()]):
        return True
    subject = defined_subject(question)
    if subject is None:
        return False
    pointer = _REFERRING.search(subject)
    return len(content_terms(subject[:pointer.start()] if pointer else subject)) >= (2 if pointer else 1)


def resolve(question: str, previous: str) -> str:
    """The follow-up in full: the earlier question with its subject swapped, or both read together."""
    rest = _LEADING.sub("", question).strip(" ?!.")
    named = [t for t in tokenize(rest) if t in COUNTRIES or t in ORGANISATIONS]
    if named and len(content_terms(rest)) <= MAX_FRAGMENT_TERMS:
        swapped = _swap_subject(previous, named[0], _as_written(rest, named[0]))
        if swapped is not None:
            return f"{swapped} {rest}" if len(content_terms(rest)) > 1 else swapped
    return f"{question} {previous}"


def _as_written(text: str, token: str) -> str:
    """The word as the person typed it ("Roscosmos", not "roscosmos")."""
    match = re.search(rf"\b{re.escape(token)}\b", text, flags=re.IGNORECASE)
    return match.group(0) if match else token


def _swap_subject(previous: str, new_subject: str, written: str) -> str | None:
    kind = COUNTRIES if new_subject in COUNTRIES else ORGANISATIONS
    words = previous.split()
    for i, word in enumerate(words):
        bare = tokenize(word)
        if bare and bare[0] in kind and bare[0] != new_subject:
            words[i] = re.sub(re.escape(bare[0]), written, word, flags=re.IGNORECASE)
            return " ".join(words)
    return None


def choose(
    follow_up: FollowUpPlan, alone: Answer, resolved: Answer | None, earlier: Answer | None = None
) -> Answer:
    """The answer to give: the question alone when it stands on its own, else the resolved one.
    ``earlier`` is the answer to the question it follows: a follow-up that, asked alone, already lands
    on that answer's subject ("how many countries are in it now?" after a question about the ILRS)
    keeps its own answer, which the earlier question's words would otherwise drown."""
    if resolved is None:
        pointing = follow_up.refers_back and not named_terms(follow_up.question)
        lost = pointing or (follow_up.dependent and not alone.answered)
        if lost and alone.decline_reason != "not_a_question":
            return replace(alone, answered=False, lead="", passages=(), history=(), premise=None,
                           decline_reason="not_understood", suggestions=(), message=NOT_UNDERSTOOD_TEXT)
        return alone
    names_something = follow_up.dependent and bool(content_terms(follow_up.question))  # "and brazil"
    if alone.decline_reason == "not_a_question" and not follow_up.refers_back and not names_something:
        return alone  # "thanks!" after a question is still thanks
    if not follow_up.dependent and (alone.answered or alone.decline_reason == "out_of_scope" or follow_up.new_subject
                                    or named_terms(follow_up.question)):
        # A whole question, or one about something the earlier ones never touched, or one that names its
        # own subject ("who runs the Canadian Space Agency?" after NASA's head): the context cannot answer
        # what it does not cover. Only a nameless one ("who is building the vehicle?") reads the context.
        return alone
    if follow_up.dependent and alone.answered and not resolved.answered:
        return alone
    if follow_up.dependent and alone.answered and same_subject(alone, earlier):
        return replace(alone, context_used=follow_up.used)  # the conversation confirmed the subject
    return replace(resolved, question=follow_up.question, context_used=follow_up.used)



def same_subject(alone: Answer, earlier: Answer | None) -> bool:
    """The answer's lead is on a topic among the earlier answer's top passages."""
    if earlier is None or not earlier.answered or not alone.passages:
        return False
    return alone.passages[0].passage.topic in {r.passage.topic for r in earlier.passages[:3]}
