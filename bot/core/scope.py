"""The knowledge base's scope (``knowledge/scope.md``): a summary, what is covered and what is not.

The summary is what a decline shows; the two lists are example subjects that the judge compares a
question with, to tell an out-of-scope question from a space-policy one the knowledge base lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SECTION = re.compile(r"^##\s+(?P<name>.+?)\s*$")


@dataclass(frozen=True)
class Scope:
    summary: str
    covered: tuple[str, ...] = ()
    not_covered: tuple[str, ...] = ()


def parse_scope(text: str) -> Scope:
    """Read the summary paragraph(s) before the first ``##`` and the bullets under Covered / Not covered."""
    summary: list[str] = []
    sections: dict[str, list[str]] = {"covered": [], "not covered": []}
    current: list[str] | None = None
    in_preamble = True
    for raw in text.splitlines():
        line = raw.strip()
        heading = _SECTION.match(line)
        if heading:
            in_preamble = False
            current = sections.get(heading.group("name").casefold())
            continue
        if in_preamble:
            if line and not line.startswith("#"):
                summary.append(line)
        elif current is not None and line.startswith(("- ", "* ")):
            current.append(line[2:].strip())
    return Scope(" ".join(summary), tuple(sections["covered"]), tuple(sections["not covered"]))
