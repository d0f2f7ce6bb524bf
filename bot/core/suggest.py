"""Autocomplete: example questions, passage titles and passage ids matched with rapidfuzz."""

from __future__ import annotations

from rapidfuzz import fuzz, process

from bot.core.knowledge import KnowledgeBase
from bot.core.models import Suggestion


def suggest(knowledge: KnowledgeBase, text: str, limit: int = 25) -> list[Suggestion]:
    entries = [Suggestion(q, "question") for q in knowledge.examples]
    entries += [Suggestion(p.title, "passage", p.id) for p in knowledge.passages.values()]
    query = text.strip()
    if not query:
        return entries[:limit]
    exact_ids = [Suggestion(p.title, "passage", p.id) for p in knowledge.passages.values() if p.id.startswith(query)]
    labels = [f"{e.label} {e.passage_id or ''}" for e in entries]
    matches = process.extract(query, labels, scorer=fuzz.WRatio, limit=limit)
    ranked = exact_ids + [entries[index] for _, _, index in matches]
    return list(dict.fromkeys(ranked))[:limit]
