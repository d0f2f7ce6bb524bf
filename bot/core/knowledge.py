"""Loading and validating the curated knowledge files (``knowledge/*.yaml``).

Every problem in every file is collected and reported at once, each naming the file, the passage
(by id, or by position when it has no usable id), the field and the reason. The format itself is
described by the pydantic models in ``knowledge_schema``; YAML is read by ``yaml_loader``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from bot.core.knowledge_checks import (
    corrects_placement_warnings,
    link_issues,
    near_duplicate_warnings,
    passage_field_issues,
)
from bot.core.knowledge_rules import REPOST_SHARE_LIMIT, SLUG
from bot.core.knowledge_schema import PassageEntry, TopicHeader, error_fields
from bot.core.models import Passage, Source, Topic, ValidationIssue
from bot.core.yaml_loader import StrictYamlError, load_yaml

log = logging.getLogger(__name__)

SCOPE_FILE = "scope.md"
DEFAULT_SCOPE = "Space policy: space stations, lunar programmes, space law, agencies and their plans."
MAX_MESSAGE_CHARS = 300
MAX_LABEL_CHARS = 60


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


def load_knowledge(directory: Path, *, today: dt.date | None = None) -> LoadResult:
    """Read and validate every ``*.yaml`` file in ``directory``."""
    collector = _Collector(today or dt.date.today())
    if not directory.is_dir():
        collector.error(str(directory), None, None, "knowledge directory not found")
        return LoadResult(None, collector.errors, [], 0)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        collector.error(str(directory), None, None, "no *.yaml knowledge files found")
    for path in files:
        collector.read_file(path)
    collector.errors.extend(link_issues(collector.passages, collector.invalid_ids()))
    stats = KnowledgeStats.of(collector.passages.values())
    if collector.errors:
        return LoadResult(None, collector.errors, collector.warnings, len(files), stats)
    collector.warnings.extend(near_duplicate_warnings(collector.passages))
    collector.warnings.extend(corrects_placement_warnings(collector.passages))
    if stats.repost_share >= REPOST_SHARE_LIMIT:
        collector.warn(directory.name, None, "source.repost",
                       f"{stats.repost_share:.1%} of passages cite a repost; keep it under {REPOST_SHARE_LIMIT:.0%}")
    knowledge = KnowledgeBase(
        topics=collector.topics,
        passages=collector.passages,
        examples=tuple(collector.examples),
        scope=_read_scope(directory),
    )
    return LoadResult(knowledge, [], collector.warnings, len(files), stats)


def _read_scope(directory: Path) -> str:
    scope_file = directory / SCOPE_FILE
    if scope_file.is_file():
        text = scope_file.read_text(encoding="utf-8").strip()
        if text:
            return text
    return DEFAULT_SCOPE


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _issue(file: str, passage: str | None, field_name: str | None, message: str,
           severity: Literal["error", "warning"]) -> ValidationIssue:
    """An issue whose every part is short, whatever the file holds (a field name is a key the file chose)."""
    field_name = _cap(field_name, MAX_LABEL_CHARS) if field_name else field_name
    return ValidationIssue(file, passage, field_name, _cap(message, MAX_MESSAGE_CHARS), severity)


class _Collector:
    """Gathers topics, passages and every issue while files are read."""

    def __init__(self, today: dt.date) -> None:
        self.today = today
        self.errors: list[ValidationIssue] = []
        self.warnings: list[ValidationIssue] = []
        self.topics: dict[str, Topic] = {}
        self.passages: dict[str, Passage] = {}
        self.examples: list[str] = []
        self._topic_files: dict[str, str] = {}
        self._id_files: dict[str, str] = {}

    def invalid_ids(self) -> set[str]:
        """Ids of passages that were found but did not validate."""
        return set(self._id_files) - set(self.passages)

    def error(self, file: str, passage: str | None, field_name: str | None, message: str) -> None:
        self.errors.append(_issue(file, passage, field_name, message, "error"))

    def warn(self, file: str, passage: str | None, field_name: str | None, message: str) -> None:
        self.warnings.append(_issue(file, passage, field_name, message, "warning"))

    def read_file(self, path: Path) -> None:
        name = path.name
        try:
            document = load_yaml(path.read_text(encoding="utf-8"))
        except StrictYamlError as problem:
            self.error(name, None, None, str(problem))
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.error(name, None, None, f"cannot read file: {exc}")
            return
        if not isinstance(document, dict):
            self.error(name, None, None, "expected a mapping with 'topic', 'title' and 'passages'")
            return
        self._read_topic(path, document)

    def _read_topic(self, path: Path, document: dict[str, Any]) -> None:
        name = path.name
        header: TopicHeader | None = None
        try:
            header = TopicHeader.model_validate(document)
        except ValidationError as exc:
            for field_name, message in error_fields(exc):
                self.error(name, None, field_name, message)
        slug = header.topic if header else None
        if slug and slug != path.stem:
            self.error(name, None, "topic", f"'{slug}' does not match the file name '{path.stem}'")
            slug = None
        elif slug in self._topic_files:
            self.error(name, None, "topic", f"'{slug}' is also the topic of {self._topic_files[slug]}")
            slug = None
        raw_passages = document.get("passages")
        if not isinstance(raw_passages, list):
            return
        topic = slug or path.stem
        ids = [self._read_passage(path, topic, position, raw) for position, raw in enumerate(raw_passages, 1)]
        if header and slug:
            self._topic_files[slug] = name
            self.topics[slug] = Topic(slug, header.title, path, tuple(i for i in ids if i))
            self.examples.extend(header.examples)

    def _read_passage(self, path: Path, topic: str, position: int, raw: object) -> str | None:
        name = path.name
        if not isinstance(raw, dict):
            self.error(name, f"#{position}", None, "a passage must be a mapping")
            return None
        passage_id, where = _passage_label(raw.get("id"), position)
        if passage_id and passage_id in self._id_files:
            self.error(name, passage_id, "id", f"duplicate id: also defined in {self._id_files[passage_id]}")
        elif passage_id:
            self._id_files[passage_id] = name
        errors_before = len(self.errors)
        entry: PassageEntry | None = None
        try:
            entry = PassageEntry.model_validate(raw, context={"today": self.today})
        except ValidationError as exc:
            for field_name, message in error_fields(exc):
                self.error(name, where, field_name, message)
        for field_name, message in passage_field_issues(raw):
            self.error(name, where, field_name, message)
        if entry is None or len(self.errors) > errors_before:
            return None
        self.passages[entry.id] = _passage(entry, topic, path)
        return entry.id


def _passage_label(raw_id: object, position: int) -> tuple[str | None, str]:
    """(the id if it is usable, how issues name the passage): its id, else its position ``#n``."""
    if isinstance(raw_id, str) and SLUG.match(raw_id.strip()):
        return raw_id.strip(), raw_id.strip()
    if isinstance(raw_id, (str, int)) and str(raw_id).strip():
        return None, f"#{position} ({_cap(str(raw_id).strip(), MAX_LABEL_CHARS)})"
    return None, f"#{position}"


def _passage(entry: PassageEntry, topic: str, path: Path) -> Passage:
    source = entry.source
    return Passage(
        id=entry.id, title=entry.title, text=entry.text, date=entry.date,
        source=Source(source.publisher, source.title, source.url, found=source.found, repost=source.repost),
        topic=topic, file=path, tags=tuple(entry.tags), aliases=tuple(entry.aliases),
        supersedes=tuple(entry.supersedes), kind=entry.kind, corrects=tuple(entry.corrects),
        checked=entry.checked, note=entry.note,
    )
