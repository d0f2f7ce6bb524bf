"""Rules that tie several fields of a passage, or several passages, together."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Set
from typing import Any

from bot.core.knowledge_rules import is_aggregator, quote, source_domain
from bot.core.models import Passage, ValidationIssue

NEAR_DUPLICATE_RATIO = 95.0


def passage_field_issues(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, reason) for rules across one passage's fields.

    Checked on the raw mapping, with type guards, so they are reported together with any error in
    the fields themselves.
    """
    issues: list[tuple[str, str]] = []
    source = raw.get("source")
    source = source if isinstance(source, Mapping) else {}
    url = source.get("url")
    if isinstance(url, str) and is_aggregator(url) and source.get("repost") is not True:
        issues.append((
            "source.repost",
            f"{quote(source_domain(url))} reposts other outlets' reports: cite the original, or set "
            "'repost: true' and name the original in the publisher",
        ))
    if source.get("found") is False and not (isinstance(raw.get("note"), str) and raw["note"].strip()):
        issues.append(("note", "required when source.found is false: name the page that corroborates the passage"))
    date, checked = _lenient_date(raw.get("date")), _lenient_date(raw.get("checked"))
    if date and checked and checked < date:
        issues.append(("checked", f"{checked.isoformat()} is before the passage's date ({date.isoformat()})"))
    return issues


def _lenient_date(value: object) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip()) if isinstance(value, str) else None
    except ValueError:
        return None


def link_issues(passages: Mapping[str, Passage], invalid_ids: Set[str] = frozenset()) -> list[ValidationIssue]:
    """Every ``supersedes`` id exists, is not newer, suits the passage's kind, and the links form no cycle.

    A link to one of ``invalid_ids`` (passages that exist but have errors of their own) is not
    reported again as unknown.
    """
    issues: list[ValidationIssue] = []
    for passage in passages.values():
        for target_id in passage.supersedes:
            if target_id in invalid_ids:
                continue
            problem = _link_problem(passage, target_id, passages.get(target_id))
            if problem:
                issues.append(ValidationIssue(passage.file.name, passage.id, "supersedes", problem))
    for cycle in _find_cycles(passages):
        first = passages[cycle[0]]
        issues.append(ValidationIssue(
            first.file.name, first.id, "supersedes", "cycle: " + " -> ".join([*cycle, cycle[0]])))
    return issues


def _link_problem(passage: Passage, target_id: str, target: Passage | None) -> str | None:
    if target is None:
        return f"unknown passage id {quote(target_id)}"
    if target_id == passage.id:
        return "a passage cannot supersede itself"
    if target.date > passage.date:
        return f"'{target_id}' ({target.date}) is newer than this passage ({passage.date})"
    if passage.kind == "proposal" and target.kind != "proposal":
        return f"a proposal may only supersede proposals; '{target_id}' is of kind '{target.kind}'"
    return None


def _find_cycles(passages: Mapping[str, Passage]) -> list[list[str]]:
    """Each distinct ``supersedes`` cycle once, as the list of ids along it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in passages[node].supersedes:
            if nxt not in passages or nxt == node:
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append(list(cycle))
            elif state.get(nxt) is None:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for start in passages:
        if start not in state:
            visit(start, [])
    return cycles


def corrects_placement_warnings(passages: Mapping[str, Passage]) -> list[ValidationIssue]:
    """``corrects`` belongs on the head of a storyline: a superseded passage's may no longer be true."""
    superseded_by: dict[str, str] = {}
    for passage in passages.values():
        for target_id in passage.supersedes:
            superseded_by.setdefault(target_id, passage.id)
    return [
        ValidationIssue(
            passage.file.name, passage.id, "corrects",
            f"on a superseded passage (superseded by {superseded_by[passage.id]}); move it to the storyline's head",
            "warning",
        )
        for passage in passages.values()
        if passage.corrects and passage.id in superseded_by
    ]


def near_duplicate_warnings(passages: Mapping[str, Passage]) -> list[ValidationIssue]:
    """A warning for each pair of passages whose texts are near-identical (rapidfuzz ratio >= 95)."""
    ordered = list(passages.values())
    pairs = sorted(_similar_pairs([p.text for p in ordered], NEAR_DUPLICATE_RATIO))
    return [
        ValidationIssue(
            ordered[i].file.name, ordered[i].id, "text",
            f"near-duplicate of {ordered[j].id} in {ordered[j].file.name} (similarity {score:.0f})", "warning",
        )
        for i, j, score in pairs
    ]


def _similar_pairs(texts: list[str], cutoff: float) -> list[tuple[int, int, float]]:
    """(i, j, ratio) with i < j for texts at least ``cutoff`` similar by ``fuzz.ratio``.

    Each insertion or deletion changes one character count, so the ratio of two texts is at most
    ``100 * (1 - sum(|count differences|) / (len_a + len_b))``. That bound, computed for all pairs
    at once from character counts, leaves ``fuzz.ratio`` only the few pairs that could reach the
    cutoff: comparing every pair took most of the knowledge base's load time.
    """
    import numpy as np
    from rapidfuzz import fuzz

    if len(texts) < 2:
        return []
    alphabet = {char: k for k, char in enumerate(sorted(set().union(*texts)))}
    counts = np.zeros((len(texts), len(alphabet)), dtype=np.int32)
    for row, text in enumerate(texts):
        for char, count in Counter(text).items():
            counts[row, alphabet[char]] = count
    lengths = counts.sum(axis=1)
    pairs = []
    for i in range(len(texts) - 1):
        differences = np.abs(counts[i + 1:] - counts[i]).sum(axis=1)
        bounds = 100.0 * (1.0 - differences / (lengths[i] + lengths[i + 1:]))
        for j in (np.flatnonzero(bounds >= cutoff) + i + 1).tolist():
            score = fuzz.ratio(texts[i], texts[j], score_cutoff=cutoff)
            if score:
                pairs.append((i, j, score))
    return pairs
