"""Loading and validating the curated knowledge files (``knowledge/*.yaml``).

Every problem in every file is collected and reported at once, each naming the file, the passage
(by id, or by position when it has no usable id), the field and the reason. The format itself is
described by the pydantic models in ``knowledge_schema``; YAML is read by ``yaml_loader``, one file at a
time by ``knowledge_reader``; files unchanged since they last validated come from ``knowledge_cache``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.knowledge_cache import CachedWarnings, read_cache, write_cache
from bot.core.knowledge_reader import Collector
from bot.core.models import Passage, Topic, ValidationIssue

log = logging.getLogger(__name__)

SCOPE_FILE = "scope.md"
DEFAULT_SCOPE = "Space policy: space stations, lunar programmes, space law, agencies and their plans."


@dataclass(frozen=True)
class KnowledgeBase:
    """A validated knowledge base: topics and passages, in file order."""

    topics: Mapping[str, Topic]
    passages: Mapping[str, Passage]
    examples: tuple[str, ...] = ()
    scope: str = DEFAULT_SCOPE
    version: str = field(init=False)

    def __post_init__(self) -> None:
        version = knowledge_hash(self.passages.values(), self.topics.values(), self.examples, self.scope)
        object.__setattr__(self, "version", version)

    def __len__(self) -> int:
        return len(self.passages)


@dataclass(frozen=True)
class KnowledgeStats:
    """How the passages' sources stand: reposts, unchecked pages, pages not found again."""

    passages: int = 0
    reposts: int = 0
    unchecked: int = 0
    not_found: int = 0

    @classmethod
    def of(cls, passages: Iterable[Passage]) -> KnowledgeStats:
        items = list(passages)
        return cls(
            passages=len(items),
            reposts=sum(p.source.repost for p in items),
            unchecked=sum(p.checked is None for p in items),
            not_found=sum(not p.source.found for p in items),
        )

    @property
    def repost_share(self) -> float:
        return self.reposts / self.passages if self.passages else 0.0

    def summary(self) -> str:
        from bot.core.knowledge_rules import REPOST_SHARE_LIMIT

        return (f"sources: {self.reposts} of {self.passages} passages ({self.repost_share:.1%}) cite a repost "
                f"(limit {REPOST_SHARE_LIMIT:.0%}); {self.unchecked} without 'checked'; "
                f"{self.not_found} with 'source.found: false'")


@dataclass
class LoadResult:
    knowledge: KnowledgeBase | None
    errors: list[ValidationIssue]
    warnings: list[ValidationIssue]
    files: int
    stats: KnowledgeStats = field(default_factory=KnowledgeStats)  # over the passages that validated
    parsed: tuple[str, ...] = ()  # the files parsed and validated afresh (the others came from the parse cache)

    @property
    def ok(self) -> bool:
        return self.knowledge is not None and not self.errors


def knowledge_hash(
    passages: Iterable[Passage], topics: Iterable[Topic], examples: Iterable[str] = (), scope: str = ""
) -> str:
    """A short content hash of the whole knowledge base: its version (moderators' notes included)."""
    payload = {
        "passages": sorted((p.to_record() for p in passages), key=lambda d: d["id"]),
        "topics": sorted([t.slug, t.title] for t in topics),
        "examples": list(examples),
        "scope": scope,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:12]


def load_knowledge(directory: Path, *, today: dt.date | None = None, cache_file: Path | None = None) -> LoadResult:
    """Read and validate every ``*.yaml`` file in ``directory``.

    With ``cache_file``, a file whose bytes match its entry there is taken as it validated before
    (``knowledge_cache``); every other file is parsed and validated, and the cache updated.
    """
    collector = Collector(today or dt.date.today())
    if not directory.is_dir():
        collector.error(str(directory), None, None, "knowledge directory not found")
        return LoadResult(None, collector.errors, [], 0)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        collector.error(str(directory), None, None, "no *.yaml knowledge files found")
    cache = read_cache(cache_file)
    entries = {path.name: entry for path in files if (entry := collector.read_file(path, cache.files.get(path.name)))}
    stats = KnowledgeStats.of(collector.passages.values())
    knowledge = None
    if not collector.errors:
        knowledge = KnowledgeBase(
            topics=collector.topics, passages=collector.passages, examples=tuple(collector.examples),
            scope=_read_scope(directory),
        )
    cached = cache.warnings.get(knowledge.version) if knowledge is not None else None
    if cached is not None and cached.directory == directory.name:
        warnings = list(cached.issues)  # cached only for a version whose links checked out
    else:
        warnings = _check_across_files(collector, directory.name, stats)
    if collector.errors:
        knowledge, warnings = None, []
    if cache_file is not None and (entries != cache.files or (knowledge is not None and cached is None)):
        kept = {knowledge.version: CachedWarnings(directory.name, tuple(warnings))} if knowledge is not None else {}
        write_cache(cache_file, entries, kept)
    return LoadResult(knowledge, collector.errors, [*collector.warnings, *warnings], len(files), stats,
                      tuple(collector.parsed))


def _check_across_files(collector: Collector, directory_name: str, stats: KnowledgeStats) -> list[ValidationIssue]:
    """The rules across files: links are errors (added to the collector's); the warnings are returned."""
    from bot.core.knowledge_checks import corrects_placement_warnings, link_issues, near_duplicate_warnings
    from bot.core.knowledge_rules import REPOST_SHARE_LIMIT

    collector.errors.extend(link_issues(collector.passages, collector.invalid_ids()))
    if collector.errors:
        return []
    warnings = [*near_duplicate_warnings(collector.passages), *corrects_placement_warnings(collector.passages)]
    if stats.repost_share >= REPOST_SHARE_LIMIT:
        warnings.append(ValidationIssue(
            directory_name, None, "source.repost",
            f"{stats.repost_share:.1%} of passages cite a repost; keep it under {REPOST_SHARE_LIMIT:.0%}", "warning",
        ))
    return warnings


def _read_scope(directory: Path) -> str:
    scope_file = directory / SCOPE_FILE
    if scope_file.is_file():
        text = scope_file.read_text(encoding="utf-8").strip()
        if text:
            return text
    return DEFAULT_SCOPE
