"""Stage 1, understanding the question: clean it, fix typos, read its time, type and presuppositions.

Nothing here looks at the index; the result, a :class:`Query`, is what every later stage reads.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from bot.core.acronyms import spell_out_acronyms
from bot.core.models import DeclineReason
from bot.core.names import word_set
from bot.core.retrieval import STOPWORDS, LexicalIndex, correct_query
from bot.core.stemming import stem
from bot.core.text import TimeReference, asks_about_the_past, find_time_reference, tokenize

MAX_QUESTION_CHARS = 2_000

QuestionKind = Literal["definition", "other"]
# What a question takes for granted: that an event happened ("when did Russia quit?"), that a state
# still holds ("is Rogozin still in charge?"), or that something is so ("why is the USDV a Starship?").
Presupposition = Literal["event", "still", "state"]

# Words that carry no question on their own: greetings, thanks, chatter about the bot itself.
SMALL_TALK = word_set(
    "hi hello hey hiya yo sup howdy greetings morning evening afternoon night good great nice cool awesome "
    "thanks thank thx ty cheers ok okay k kk lol lmao haha hahaha xd yes no yep nope yeah nah bye goodbye "
    "help bot bots test testing ping welcome wow hmm hm oh ah huh please sorry love like you're youre "
    "anything something commands command start can much gm gn tysm np brb everyone everybody guys folks yall "
    "y'all"
)
# Questions about the bot itself, answered with the help text: "how does this bot work?", "how do I use you?"
_ABOUT_THE_BOT = re.compile(
    r"^(?:so\s+|ok\s+|hey\s+)?(?:how\s+(?:does|do)\s+(?:this|the|you)(?:\s+bot)?\s+work"
    r"|how\s+(?:do|can)\s+i\s+use\s+(?:this|you|the\s+bot)(?:\s+bot)?"
    r"|what\s+(?:can|do)\s+(?:you|this\s+bot|the\s+bot)\s+(?:do|know|answer))\W*$",
    re.IGNORECASE,
)
# Who is asked to explain: "can you", "could someone", "pls", "someone".
_ASKER = (r"(?:can|could|would|will)\s+(?:you|u|some(?:one|body)|any(?:one|body))\s+|some(?:one|body)\s+|"
          r"pls\s+|please\s+")
_DEFINITION = re.compile(
    r"^(?:(?:so|and|ok|okay|hey|sorry|also|well|like|briefly|basically|quick question:?|noob question:?)[\s,]+)*(?:"
    r"what'?s\s+the\s+deal\s+with\s+(?:the\s+)?(?P<x6>.+?)"
    r"|(?:what|wat|wut|waht|wtf|wth|what\s+the\s+(?:heck|hell|fuck))"
    r"(?:\s+(?:exactly\s+|even\s+)?(?:is|are|r|was|were)|'s|’s|s)\s+(?:exactly\s+|even\s+)?"
    r"(?:the\s+|an?\s+)?(?:(?:point|purpose|goal|aim|idea)\s+of\s+(?:the\s+|an?\s+)?)?"
    r"(?P<x1>.+?)(?:\s+(?:all\s+)?about|\s+for|\s+(?:supposed|meant)\s+to\s+(?:be|do))?"
    r"|what\s+(?:does|do)\s+(?:the\s+)?(?P<x2>.+?)\s+(?:mean|stand\s+for|do|refer\s+to|say|cover|involve)"
    r"|(?:{asker})?explain\s+what\s+(?:the\s+|an?\s+)?(?P<x10>.+?)"
    r"\s+(?:is|are)"
    r"|(?:{asker})?(?:explain|define|describe|summari[sz]e)\s+"
    r"(?:what\s+(?:is|are)\s+)?(?:the\s+|an?\s+)?(?P<x3>.+?)"
    r"|(?:tell\s+me|(?:what\s+)?(?:can|could)\s+(?:you|u)\s+tell\s+me|what\s+do\s+(?:you|u)\s+know)\s+(?:about|what)\s+"
    r"(?:is\s+|are\s+)?"
    r"(?:the\s+|an?\s+)?(?P<x4>.+?)"
    r"|(?:eli5|meaning\s+of|(?:give\s+me\s+)?(?:a\s+)?(?:quick\s+)?(?:rundown|overview|primer)"
    r"\s+(?:of|on))"
    r"\s*:?\s+(?:the\s+)?(?P<x5>.+?)"
    r"|(?P<x8>[^?]+?)\s*[,.;:?!-]*\s*what(?:'s|’s|\s+is|\s+are)\s+(?:it|that|this|they|those|these)(?:\s+(?:even|exactly))?"
    r"|(?:i\s+)?(?:never\s+heard\s+of|don'?t\s+know\s+what)\s+(?:the\s+)?(?P<x7>.+?)(?:\s+is|\s+are)?"
    r")(?:[\s,]*(?:to\s+me|exactly|again|even|anyway|in\s+simple\s+terms|in\s+plain\s+english|for\s+me"
    r"|like\s+i'?m\s+(?:5|five)"
    # a second question that only compares: "wtf is golden dome, is it like israel's iron dome?"
    r"|[,;-]\s*(?:is|are)\s+(?:it|they|that)\s+(?:like|basically|just|kind\s+of|sort\s+of|similar\s+to)\b[^?]*"
    r"))*\s*[?.!]*$".replace("{asker}", _ASKER),
    re.IGNORECASE,
)
_MEANT_BY = re.compile(r"^meant\s+by\s+(?:the\s+)?", re.IGNORECASE)  # "what is meant by PAROS"
# A definition asks what a thing is, not its state: these words turn "what is X" into a status question.
_NOT_DEFINITION = word_set(
    "latest status current currently now today new newest next last plan plans date deadline schedule when cost "
    "costs budget price happening happened going doing said say says position timeline future end deal count "
    "number many much stance decision update news record biggest largest first days nowadays anymore"
)
MAX_DEFINED_TERMS = 7
MAX_REMARK_TERMS = 2
_ASKING = re.compile(r"\b(?:what|when|why|how|who|whom|whose|where|which|is|are|does|do|did|can|will|should|would)\b",
                     re.IGNORECASE)
_PRESUPPOSING = re.compile(
    r"\b(?:when|why|how|where|after|since|until)\s+(?:exactly\s+)?(?:did|was|were|had|has|have)\b"
    r"|\b(?:after|since|now\s+that|ever\s+since|following)\s+(?:the\s+)?[\w'’-]+(?:\s+[\w'’-]+){0,3}\s+"
    r"(?:left|quit|joined|signed|ratified|cancel(?:l)?ed|ended|crashed|retired|deorbited|withdrew|landed|"
    r"launched|collapsed|closed|scrapped|abandoned|shut|fell|exploded|banned|approved|passed|replaced|"
    r"was\s+\w+|were\s+\w+|got\s+\w+)\b"
    r"|\bwho\s+(?:replaced|succeeded)\b"
    # "what did the crew find when they landed on the Moon?"
    r"|\b(?:when|after|once)\s+(?:they|it|he|she|the\s+\w+)\s+(?:landed|launched|left|quit|joined|signed|"
    r"crashed|returned|arrived|docked|withdrew)\b"
    # "what did the crew do on the first Gaganyaan flight?"
    r"|\bwhat\s+did\s+(?:[\w'’-]+\s+){1,6}?(?:do|find|see|discover|learn|bring\s+back)\s+"
    r"(?:on|during|at|in|from|after)\b"
    # "the Mars rocks that NASA brought back"
    r"|(?<=[\w'’]\s)(?:that|which)\s+(?:[\w'’-]+\s+){0,3}?(?:brought\s+back|returned|landed|launched|built|signed|joined|"
    r"cancel(?:l)?ed|scrapped|abandoned|crashed|deorbited|retired|withdrew|quit|left)\b",
    re.IGNORECASE,
)
_STILL = re.compile(r"\bstill\b", re.IGNORECASE)
_STATE = re.compile(
    r"^(?:so\s+)?(?:why|how come)\s+(?:is|are|does|do|isn't|aren't|doesn't|don't)\b"
    r"|\b(?:now that|since)\s+[\w'’ -]{2,40}?\s+(?:is|are|never|no longer|has|have)\b"
    r"|\b(?:is|are)\s+(?:now\s+)?in force\b"
    # a present state: "how many astronauts live on the Gateway right now?"
    r"|\b(?:right\s+now|rn|these\s+days|nowadays|currently|at\s+the\s+moment|this\s+year|anymore|any\s+more)\b",
    re.IGNORECASE,
)
# "what is Raymond working on as head of the Space Force?" takes the role as still held.
_ROLE = re.compile(r"\bas\s+(?:the\s+)?(?:head|chief|leader|administrator|director|commander|boss)\s+of\b",
                   re.IGNORECASE)
# "When did Roscosmos say it would leave?" presupposes the saying, which happened, not the leaving.
_REPORTED = re.compile(
    r"\b(?:say|said|announce[ds]?|state[ds]?|claim(?:ed)?|suggest(?:ed)?|propose[ds]?|plan(?:ned)?|expect(?:ed)?|"
    r"hope[ds]?|want(?:ed)?|warn(?:ed)?|threaten(?:ed)?|promise[ds]?|tell|told|confirm(?:ed)?|mention(?:ed)?|"
    r"talk(?:ed)?|discuss(?:ed)?|hint(?:ed)?|predict(?:ed)?|estimate[ds]?|consider(?:ed)?|ask(?:ed)?|"
    r"first\s+(?:say|suggest|propose|announce)|decide[ds]?|intend(?:ed)?|agree[ds]?)\b",
    re.IGNORECASE,
)


# A request for a task rather than a question: translation, creative writing, jokes, arithmetic,
# role-play or new instructions. Out of scope whatever it names ("translate 'space station' into Russian").
_TASK = re.compile(
    r"^(?:(?:hey|ok|okay|so|please|pls|now)[\s,]+)*(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+)?)?(?:"
    r"translate\b"
    r"|(?:write|compose|draft|generate|make|create)\s+(?:me\s+|us\s+)?(?:a|an|some|the|one)?\s*(?:short\s+|funny\s+)?"
    r"(?:poem|sonnet|haiku|limerick|song|story|essay|joke|rap|script|letter|tweet|email|code|program|meme|novel)s?\b"
    r"|tell\s+(?:me|us)\s+(?:a|another|some)\s+(?:\w+\s+)?(?:joke|story|poem|riddle)s?\b"
    r"|ignore\s+(?:all\s+)?(?:your|the|previous|prior|above|my)\b"
    r"|(?:pretend|roleplay|role-play|act\s+as|imagine\s+you)\b"
    r"|(?:calculate|compute|solve|convert)\b"
    r")",
    re.IGNORECASE,
)

# Sums on figures and investment advice, wherever they come in a question: "iss weighs 435 tonnes, how much
# is that in pounds", "what percent is that", "whats the average speed", "is voyager stock a buy".
_SUMS_OR_STOCKS = re.compile(
    r"\bwhat\s+(?:percent|percentage|fraction|share)\s+(?:is|of)\s+(?:that|this|it)\b"
    r"|\bhow\s+(?:much|many)\s+is\s+(?:that|this|it)\s+in\s+(?:pounds|lbs|kg|kilo(?:gram)?s|grams|tons|tonnes|"
    r"miles|km|kilomet(?:er|re)s|feet|met(?:er|re)s|mph|kph|dollars|euros|rupees|yen|yuan|rubles|roubles)\b"
    r"|\baverage\s+speed\b"
    r"|\bstocks?\b[^?]*\b(?:a\s+)?(?:good\s+)?(?:buy|sell|investment)\b"
    r"|\b(?:should\s+i|worth)\s+(?:buy(?:ing)?|invest(?:ing)?\s+in)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Query:
    """A question as the later stages see it."""

    asked: str  # the question as asked, made safe (no lone surrogates or control characters)
    text: str  # what retrieval searches: cleaned and typo-corrected
    time: TimeReference | None
    past: bool
    kind: QuestionKind
    presupposes: Presupposition | None  # what it takes for granted, so a false premise is possible
    small_talk: bool
    task: bool  # asks for a task (translate, write a poem, a joke, sums), not about space policy
    content_terms: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.text

    @property
    def declined_as_asked(self) -> DeclineReason | None:
        """The decline its wording alone settles, with nothing to search: small talk (or nothing) is not
        a question; a request for a task is out of scope whatever it names."""
        if self.empty or self.small_talk:
            return "not_a_question"
        return "out_of_scope" if self.task else None


def sanitize(text: object) -> str:
    """Text every later stage can handle: valid Unicode, no control characters, single spaces."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if text.isascii():  # most questions: no surrogates, and already in NFC
        return " ".join(text.translate(_ASCII_CONTROLS).split())[:MAX_QUESTION_CHARS]
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text
    text = "".join(" " if _is_control(ch) else ch for ch in text)
    return " ".join(unicodedata.normalize("NFC", text).split())[:MAX_QUESTION_CHARS]


def _is_control(ch: str) -> bool:
    """Control, format, private-use and unassigned characters, but tabs and newlines (spaces to split on)."""
    return unicodedata.category(ch)[0] == "C" and ch not in "\t\n"


_ASCII_CONTROLS = {code: " " for code in range(128) if _is_control(chr(code))}


def _has_surrogates(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def content_terms(text: str) -> tuple[str, ...]:
    return tuple(t for t in tokenize(text) if t not in STOPWORDS and t not in SMALL_TALK)


def is_small_talk(text: str, known: frozenset[str] = frozenset()) -> bool:
    """Greetings, thanks, "help", emoji and punctuation: nothing that asks about anything. With the
    knowledge base's words (``known``), also a short remark that is not a question and names nothing
    the knowledge base knows ("bruh", "nice one")."""
    terms = [t for t in tokenize(text) if t not in STOPWORDS and t not in SMALL_TALK]
    if not terms or _ABOUT_THE_BOT.match(text.strip()):
        return True
    remark = "?" not in text and not _ASKING.search(text) and len(terms) <= MAX_REMARK_TERMS
    return bool(known) and remark and not any(t in known or stem(t) in known for t in terms)


def asks_for_a_task(text: str) -> bool:
    return bool(_TASK.match(text.strip()) or _SUMS_OR_STOCKS.search(text))


def question_kind(text: str) -> QuestionKind:
    """"definition" for "what is X?", "explain X", "what are the X about?"; "other" for everything else."""
    return "definition" if defined_subject(text) is not None else "other"


@functools.lru_cache(maxsize=256)  # follow-up planning and understanding both ask it of the same question
def defined_subject(text: str) -> str | None:
    """X in "what is X?", "give me an overview of X", "I don't know what X is"; None if not a definition."""
    match = _DEFINITION.match(text.strip())
    if not match:
        return None
    subject = _MEANT_BY.sub("", next(value for value in match.groupdict().values() if value))
    terms = [t for t in tokenize(subject) if t not in STOPWORDS]
    if not terms or len(terms) > MAX_DEFINED_TERMS or find_time_reference(text):
        return None
    words = tokenize(subject)
    if any(t in _NOT_DEFINITION for t in words) or words[0].endswith("ing"):  # "who's running NASA?"
        return None
    return subject.strip()


def searched_text(corrected: str) -> str:
    """What retrieval and the judge read: a definition question in one plain form ("What is the Space
    Launch System?" for "give me a quick overview of the Space Launch System"), so the wrapping words
    neither pull in other passages nor count as words no passage covers."""
    subject = defined_subject(corrected)
    return f"What is {subject}?" if subject is not None else corrected


def presupposes_an_event(text: str) -> bool:
    """True when the question takes for granted that something happened ("when did Russia quit?")."""
    match = _PRESUPPOSING.search(text)
    return bool(match) and not _REPORTED.search(text[match.start():])


def presupposition(text: str) -> Presupposition | None:
    if presupposes_an_event(text):
        return "event"
    if _STILL.search(text) or _ROLE.search(text):
        return "still"
    if _STATE.search(text):
        return "state"
    return None


def understand(question: object, lexical: LexicalIndex) -> Query:
    asked = sanitize(question)
    corrected = correct_query(asked, lexical) if asked else asked
    searched = searched_text(corrected)
    if searched != corrected:
        searched = spell_out_acronyms(searched, lexical.acronyms)
    return Query(
        asked=asked,
        text=searched,
        time=find_time_reference(asked),
        past=asks_about_the_past(asked),
        kind=question_kind(asked),
        presupposes=presupposition(asked),
        small_talk=is_small_talk(asked, lexical.vocabulary),
        task=asks_for_a_task(asked),
        content_terms=content_terms(searched),
    )
