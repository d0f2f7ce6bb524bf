"""Storylines: passages linked by ``supersedes`` into dated chains of positions on one question."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from bot.core.models import Passage


class Storylines:
    """The ``supersedes`` graph: for any passage, its latest successor and its dated history."""

    def __init__(self, passages: Mapping[str, Passage]) -> None:
        self._passages = passages
        self._successors: dict[str, list[str]] = defaultdict(list)
        for passage in passages.values():
            for earlier in passage.supersedes:
                self._successors[earlier].append(passage.id)

    @property
    def passages(self) -> Mapping[str, Passage]:
        return self._passages

    def latest(self, passage: Passage) -> Passage:
        """Follow "superseded by" links to the newest position on the same storyline."""
        current, seen = passage, {passage.id}
        while successors := [s for s in self._successors.get(current.id, ()) if s not in seen]:
            current = max((self._passages[s] for s in successors), key=lambda p: (p.date, p.id))
            seen.add(current.id)
        return current

    def members(self, passage: Passage) -> list[Passage]:
        """Every passage connected to this one by ``supersedes`` links, either way."""
        found, frontier = {passage.id}, [passage.id]
        while frontier:
            node = frontier.pop()
            neighbours = [*self._passages[node].supersedes, *self._successors.get(node, ())]
            for other in neighbours:
                if other not in found and other in self._passages:
                    found.add(other)
                    frontier.append(other)
        return [self._passages[pid] for pid in found]

    def history(self, passage: Passage) -> list[Passage]:
        """The earlier positions this passage replaced, directly or through others, newest first."""
        found: dict[str, Passage] = {}
        frontier = list(passage.supersedes)
        while frontier:
            pid = frontier.pop()
            if pid in found or pid == passage.id or pid not in self._passages:
                continue
            found[pid] = self._passages[pid]
            frontier.extend(self._passages[pid].supersedes)
        return sorted(found.values(), key=lambda p: (p.date, p.id), reverse=True)

    def is_head(self, passage: Passage) -> bool:
        """True when no newer passage supersedes this one: it is its storyline's current position."""
        return not self._successors.get(passage.id)
