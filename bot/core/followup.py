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
from bot.core.understand import content_terms, defined_subject, is_small_talk, sanitize

# Words that open a turn of the conversation ("and", "ok so", "also,", "what about"): on a fragment they
# say it continues the conversation ("and Brazil?"); in front of a question asked in full ("and when did
# Luna-25 launch?") they change nothing, so the rest of the question decides.
_LEADING = re.compile(
    r"^(?:(?:and|also|but|so|then|ok|okay|oh|well|hey|right|alright|hmm|what about|how about|same for|what of)"
    r"\b[\s,.;:!-]*)+",
    re.IGNORECASE,
)
# A question asked in full opens with a question word, an auxiliary or a request ("tell me", "explain").
_ASKS_IN_FULL = re.compile(
    r"^(?:what|whats|wat|when|whens|where|wheres|who|whos|whose|whom|why|how|hows|which|is|are|was|were|do|does|"
    r"did|can|could|will|would|should|shall|has|have|had|may|might|must|tell|explain|describe|give|list|show|"
    r"recommend)(?:n['’]t|['’]\w+)?\b|\b(?:what|when|where|who|why|how|which)\W*$",
    re.IGNORECASE,
)
_REFERRING = re.compile(
    r"\b(?:it|its|it's|they|them|their|theirs|that|this|those|these|he|him|his|she|her|there|too|also|either|"
    r"as well|instead|the same|then)\b|\bsince\W*$",
    re.IGNORECASE,
)
_POSSESSIVE = frozenset({"its", "their", "his", "her"})
# Words from that list that point at nothing said before: "is there", "there are" (something exists),
# "this year", "these days" (a time), "what time is it", "will it rain" (the weather's "it").
_NOT_POINTING = re.compile(
    r"\b(?:is|are|was|were|will|would|could|can|might)\s+there\b|\bthere\s+(?:is|are|was|were|will|would|be|['’]s)\b"
    r"|\b(?:this|these)\s+(?:year|month|week|weekend|decade|century|morning|afternoon|evening|summer|spring|autumn|"
    r"fall|winter|days?)\b"
    r"|\bwhat time is it\b|\b(?:is|will|does)\s+it\s+(?:going to |gonna )?(?:rain|snow|be (?:sunny|cloudy|windy|"
    r"cold|hot|warm))",
    re.IGNORECASE,
)
_ADDRESSED = re.compile(r"\b(?:you|your|yourself|u|ur)\b", re.IGNORECASE)
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
    fragment: bool = False  # an opening word and no question of its own: "and Brazil?", "what about Starlab"
    asked_in_full: bool = False  # asked in full, pointing at nothing: "and when is starlab going up?"
    says_enough: bool = False  # no pointer, and two words of its own or words to the bot ("who made you")
    small_talk: bool = False  # nothing past the opening words but small talk: "also, thanks!"


def plan(question: str, context: Sequence[str], known: Collection[str] = frozenset()) -> FollowUpPlan:
    """How to read ``question`` after ``context``; ``known`` holds the knowledge base's words and the
    language's ordinary words, so a term outside it is a name the knowledge base never mentions."""
    question = sanitize(question)
    earlier = [q for q in (sanitize(c) for c in context) if q]
    rest = without_opening(question)
    dependent = leans_on_context(question)
    new_subject = bool(known) and any(t not in known for t in content_terms(question))
    pointing, dangling = points_back(rest), bool(_DANGLING_VERB.search(rest))
    refers_back = dependent and pointing
    fragment = is_fragment(question)
    says_enough = not refers_back and not dangling and (
        len(content_terms(rest)) >= MAX_FRAGMENT_TERMS or bool(_ADDRESSED.search(rest)))
    asked_in_full = not fragment and not pointing and not dangling and bool(_ASKS_IN_FULL.search(rest))
    small_talk = _only_small_talk(rest)
    shape = {"fragment": fragment and not small_talk, "says_enough": says_enough, "asked_in_full": asked_in_full,
             "small_talk": small_talk}
    if not earlier:
        return FollowUpPlan(question, None, None, dependent, refers_back, new_subject, **shape)
    full = in_full(earlier)
    return FollowUpPlan(question, resolve(question, full), earlier[-1], dependent, refers_back, new_subject, full,
                        **shape)


def in_full(earlier: Sequence[str]) -> str:
    """The last earlier question in full: a chain of fragments ("and the Moon Agreement?" after
    "How many countries are parties to the Outer Space Treaty?") is resolved from its start."""
    full = earlier[0]
    for question in earlier[1:]:
        full = resolve(question, full) if leans_on_context(question) else question
    return full


def without_opening(question: str) -> str:
    """The question without the words that open a turn: "ok so what is PAROS" -> "what is PAROS"."""
    return _LEADING.sub("", question).strip()


def is_fragment(question: str) -> bool:
    """An opening word followed by no question of its own: "and Brazil?", "what about axiom's first module"."""
    return bool(_LEADING.match(question)) and not _ASKS_IN_FULL.search(without_opening(question))


def leans_on_context(question: str) -> bool:
    """True for a fragment that needs the conversation: "and Brazil?", "who leads it now?", "why?".
    The opening words are read off first: "and when did Luna-25 launch?" is asked in full, and leans
    on nothing "when did Luna-25 launch?" would not lean on."""
    rest = without_opening(question)
    terms = content_terms(rest)
    if len(terms) > MAX_FRAGMENT_TERMS + 1 or _only_small_talk(rest):
        return False
    if names_its_own_subject(rest):
        return False
    leaning = is_fragment(question) or points_back(rest) or _DANGLING_VERB.search(rest)
    return bool(leaning) or len(terms) <= 1


def _only_small_talk(rest: str) -> bool:
    """What follows the opening words is small talk and asks nothing: "also, thanks!"."""
    return is_small_talk(rest) and not _ASKS_IN_FULL.search(rest)


def points_back(text: str) -> bool:
    """A word pointing at something said before: "who leads it now?", "did Japan sign too?", "joined
    since?". Not "is there", "this year" or "what time is it", and not a possessive whose owner the
    question names before it ("when did India do its ASAT test")."""
    text = _NOT_POINTING.sub(" ", text)
    for match in _REFERRING.finditer(text):
        word = match.group(0).casefold()
        if word in _POSSESSIVE and _names_an_owner(text[:match.start()]):
            continue
        return True
    return False


def _names_an_owner(text: str) -> bool:
    return any(_bare_name(t) in COUNTRIES or _bare_name(t) in ORGANISATIONS for t in tokenize(text)) or bool(
        named_terms(text))


def _bare_name(token: str) -> str:
    """"china" for "china's"."""
    return token.removesuffix("'s").removesuffix("’s")


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
    rest = without_opening(question).strip(" ?!.")
    named = [name for name in map(_bare_name, tokenize(rest)) if name in COUNTRIES or name in ORGANISATIONS]
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
        bare = [_bare_name(t) for t in tokenize(word)]  # "Russia's" names Russia
        if bare and bare[0] in kind and bare[0] != new_subject:
            words[i] = re.sub(re.escape(bare[0]), written, word, count=1, flags=re.IGNORECASE)
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
        if lost and alone.decline_reason != "not_a_question" and not keeps_its_decline(follow_up, alone):
            return replace(alone, answered=False, lead="", passages=(), history=(), premise=None,
                           decline_reason="not_understood", suggestions=(), message=NOT_UNDERSTOOD_TEXT)
        return alone
    if keeps_its_decline(follow_up, alone):
        return alone
    long = len(content_terms(without_opening(follow_up.question))) > MAX_FRAGMENT_TERMS + 1
    if not follow_up.dependent and (alone.answered or alone.decline_reason == "out_of_scope" or follow_up.new_subject
                                    or named_terms(follow_up.question) or long):
        # A whole question, or one about something the earlier ones never touched, or one that names its
        # own subject ("who runs the Canadian Space Agency?" after NASA's head), or says more than a follow-up
        # would (four words of its own or more): the context cannot answer what it does not cover. Only a
        # short nameless one ("who is building the vehicle?") reads the context.
        return alone
    if follow_up.dependent and alone.answered and (not resolved.answered or names_its_answer(follow_up, alone)):
        return alone
    if follow_up.dependent and alone.answered and same_subject(alone, earlier):
        return replace(alone, context_used=follow_up.used)  # the conversation confirmed the subject
    return replace(resolved, question=follow_up.question, context_used=follow_up.used)


def keeps_its_decline(follow_up: FollowUpPlan, alone: Answer) -> bool:
    """Small talk, or a question out of scope as asked, stays so after any question: "thanks!",
    "tell me a joke", "what time is it in tokyo", "who made you". Not a fragment naming something
    ("and brazil", which small-talk rules can miss) nor one pointing back ("why did it fail?")."""
    if follow_up.small_talk:
        return True
    if alone.decline_reason == "not_a_question":
        names_something = follow_up.fragment and bool(content_terms(without_opening(follow_up.question)))
        return not follow_up.refers_back and not names_something
    return alone.decline_reason == "out_of_scope" and follow_up.says_enough


def names_its_answer(follow_up: FollowUpPlan, alone: Answer) -> bool:
    """A question asked in full that names, in so many words, what its own answer is about: "when is
    starlab going up" (Starlab), "who commands spacecom now" (SPACECOM). Short as it is, it needs no
    conversation; "who was on board?" names nothing of the kind. A country alone does not count: it is
    what follow-ups swap ("how much does Japan pay?" after a question about the Gateway)."""
    if not follow_up.asked_in_full or not alone.passages:
        return False
    lead = alone.passages[0].passage
    words = f" {' '.join(_bare_name(t) for t in tokenize(follow_up.question))} "
    names = {" ".join(tokenize(alias)) for alias in lead.aliases} - {""}
    return any(f" {name} " in words for name in names if not set(name.split()) <= COUNTRIES)


def same_subject(alone: Answer, earlier: Answer | None) -> bool:
    """The answer's lead is on a topic among the earlier answer's top passages."""
    if earlier is None or not earlier.answered or not alone.passages:
        return False
    return alone.passages[0].passage.topic in {r.passage.topic for r in earlier.passages[:3]}
