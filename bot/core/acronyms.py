"""Acronyms the knowledge base spells out in its aliases ("OST" and "Outer Space Treaty" on one passage).

The encoder barely knows "OST"; the passages say "Outer Space Treaty". The understanding stage adds
what an acronym stands for to a definition question ("What is OST? (Outer Space Treaty)").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

from bot.core.models import Passage
from bot.core.text import tokenize

_FILLERS = frozenset({"of", "the", "for", "on", "in", "and", "an", "a", "to"})


def acronyms_of(passages: Sequence[Passage]) -> dict[str, str]:
    """Acronyms the aliases spell out ("ost" -> "Outer Space Treaty"): a one-word alias of a passage whose
    letters are the initials of another of its aliases, filler words left out."""
    found: dict[str, set[str]] = defaultdict(set)
    for passage in passages:
        for short in passage.aliases:
            if " " in short or not 2 <= len(short) <= 6 or not short.isalnum():
                continue
            for long in passage.aliases:
                words = [w for w in re.findall(r"[A-Za-z]+", long) if w.lower() not in _FILLERS]
                if len(words) >= 2 and "".join(w[0] for w in words).lower() == short.lower():
                    found[short.lower()].add(long)
    return {short: min(longs, key=lambda s: (s.lower(), s)) for short, longs in found.items()}


def spell_out_acronyms(text: str, acronyms: Mapping[str, str]) -> str:
    """The text with what its acronyms stand for added ("What is the OST? (Outer Space Treaty)"), unless
    the text already says it."""
    tokens = tokenize(text)
    present = set(tokens)
    spelled = [acronyms[t] for t in dict.fromkeys(tokens) if t in acronyms]
    spelled = [s for s in spelled if not set(tokenize(s)) <= present]
    return f"{text} ({', '.join(spelled)})" if spelled else text
