"""Loading and validating the curated knowledge files (``knowledge/*.yaml``).

Every problem in every file is collected and reported at once, each naming the file, the passage
(by id, or by position when it has no usable id), the field and the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from bot.core.models import Passage, Source, Topic, ValidationIssue
from bot.core.text import count_sentences

log = logging.getLogger(__name__)

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_TEXT_CHARS = 900
MAX_SENTENCES = 5
NEAR_DUPLICATE_RATIO = 95.0
TOPIC_FIELDS = {"topic", "title", "passages", "examples"}
PASSAGE_FIELDS = {"id", "title", "text", "date", "source", "tags", "aliases", "supersedes"}
SOURCE_FIELDS = {"publisher", "title", "url"}
SCOPE_FILE = "scope.md"
DEFAULT_SCOPE = "Space policy: space stations, lunar programmes, space law, agencies and their plans."


class _TextDatesLoader(yaml.SafeLoader):
    """A safe loader that leaves dates as text, so a bad date is reported on its field, not as a crash."""


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


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


@dataclass
class LoadResult:
    knowledge: KnowledgeBase | None
    errors: list[ValidationIssue]
    warnings: list[ValidationIssue]
    files: int

    @property
    def ok(self) -> bool:
        return self.knowledge is not None and not self.errors


def knowledge_hash(
    passages: Iterable[Passage], topics: Iterable[Topic], examples: Iterable[str] = (), scope: str = ""
) -> str:
    """A short content hash of the whole knowledge base: its version."""
    payload = {
        "passages": sorted((p.to_dict() for p in passages), key=lambda d: d["id"]),
        "topics": sorted([t.slug, t.title] for t in topics),
        "examples": list(examples),
        "scope": scope,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:12]


def load_knowledge(directory: Path, *, today: dt.date | None = None) -> LoadResult:
    """Read and validate every ``*.yaml`` file in ``directory``."""
    today = today or dt.date.today()
    collector = _Collector(today)
    if not directory.is_dir():
        collector.error(str(directory), None, None, "knowledge directory not found")
        return LoadResult(None, collector.errors, [], 0)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        collector.error(str(directory), None, None, "no *.yaml knowledge files found")
    for path in files:
        collector.read_file(path)
    collector.check_links()
    if collector.errors:
        return LoadResult(None, collector.errors, collector.warnings, len(files))
    collector.check_near_duplicates()
    knowledge = KnowledgeBase(
        topics=collector.topics,
        passages=collector.passages,
        examples=tuple(collector.examples),
        scope=_read_scope(directory),
    )
    return LoadResult(knowledge, [], collector.warnings, len(files))


def _read_scope(directory: Path) -> str:
    scope_file = directory / SCOPE_FILE
    if scope_file.is_file():
        text = scope_file.read_text(encoding="utf-8").strip()
        if text:
            return text
    return DEFAULT_SCOPE


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

    def error(self, file: str, passage: str | None, field_name: str | None, message: str) -> None:
        self.errors.append(ValidationIssue(file, passage, field_name, message))

    def warn(self, file: str, passage: str | None, field_name: str | None, message: str) -> None:
        self.warnings.append(ValidationIssue(file, passage, field_name, message, "warning"))

    def read_file(self, path: Path) -> None:
        name = path.name
        try:
            document = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextDatesLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.error(name, None, None, f"malformed YAML{where}: {problem}")
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
        for unknown in sorted(set(document) - TOPIC_FIELDS):
            self.error(name, None, str(unknown), "unknown field")
        slug = self._required_text(name, None, "topic", document.get("topic"))
        title = self._required_text(name, None, "title", document.get("title"))
        if slug and not SLUG.match(slug):
            self.error(name, None, "topic", f"'{slug}' is not a kebab-case slug")
        elif slug and slug != path.stem:
            self.error(name, None, "topic", f"'{slug}' does not match the file name '{path.stem}'")
        elif slug in self._topic_files:
            self.error(name, None, "topic", f"'{slug}' is also the topic of {self._topic_files[slug]}")
        self.examples.extend(self._string_list(name, None, "examples", document.get("examples")))
        raw_passages = document.get("passages")
        if not isinstance(raw_passages, list) or not raw_passages:
            self.error(name, None, "passages", "must be a non-empty list of passages")
            return
        ids = [self._read_passage(path, slug or path.stem, i, raw) for i, raw in enumerate(raw_passages, 1)]
        if slug and title:
            self._topic_files[slug] = name
            self.topics[slug] = Topic(slug, title, path, tuple(i for i in ids if i))

    def _read_passage(self, path: Path, topic: str, position: int, raw: object) -> str | None:
        name = path.name
        label = f"#{position}"
        if not isinstance(raw, dict):
            self.error(name, label, None, "a passage must be a mapping")
            return None
        passage_id = self._required_text(name, label, "id", raw.get("id"))
        if passage_id and not SLUG.match(passage_id):
            self.error(name, f"{label} ({passage_id})", "id", "must be kebab-case (a-z, 0-9, '-')")
            passage_id = None
        where = passage_id or label
        errors_before = len(self.errors)
        if passage_id and passage_id in self._id_files:
            self.error(name, passage_id, "id", f"duplicate id: also defined in {self._id_files[passage_id]}")
        elif passage_id:
            self._id_files[passage_id] = name
        for unknown in sorted(set(raw) - PASSAGE_FIELDS):
            self.error(name, where, str(unknown), "unknown field")
        title = self._required_text(name, where, "title", raw.get("title"))
        text = self._read_text(name, where, raw.get("text"))
        date = self._read_date(name, where, raw.get("date"))
        source = self._read_source(name, where, raw.get("source"))
        tags = self._string_list(name, where, "tags", raw.get("tags"))
        aliases = self._string_list(name, where, "aliases", raw.get("aliases"))
        supersedes = self._string_list(name, where, "supersedes", raw.get("supersedes"))
        if passage_id is None or len(self.errors) > errors_before:
            return None
        assert title and text and date and source  # guaranteed: each missing one added an error
        self.passages[passage_id] = Passage(
            id=passage_id, title=title, text=text, date=date, source=source, topic=topic, file=path,
            tags=tuple(tags), aliases=tuple(aliases), supersedes=tuple(supersedes),
        )
        return passage_id

    def _required_text(self, file: str, where: str | None, field_name: str, value: object) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            self.error(file, where, field_name, "missing or empty")
            return None
        if not isinstance(value, str):
            self.error(file, where, field_name, f"must be text, not {type(value).__name__}")
            return None
        return " ".join(value.split())

    def _read_text(self, file: str, where: str, value: object) -> str | None:
        text = self._required_text(file, where, "text", value)
        if text is None:
            return None
        if len(text) > MAX_TEXT_CHARS:
            self.error(file, where, "text", f"{len(text)} characters; at most {MAX_TEXT_CHARS}")
            return None
        sentences = count_sentences(text)
        if sentences > MAX_SENTENCES:
            self.error(file, where, "text", f"{sentences} sentences; at most {MAX_SENTENCES}")
            return None
        return text

    def _read_date(self, file: str, where: str, value: object) -> dt.date | None:
        if value is None or value == "":
            self.error(file, where, "date", "missing or empty")
            return None
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value.strip())
            except ValueError:
                self.error(file, where, "date", f"'{value}' is not an ISO date (YYYY-MM-DD)")
                return None
        if not isinstance(value, dt.date):
            self.error(file, where, "date", f"'{value}' is not an ISO date (YYYY-MM-DD)")
            return None
        if value > self.today:
            self.error(file, where, "date", f"{value.isoformat()} is in the future (today is {self.today})")
            return None
        return value

    def _read_source(self, file: str, where: str, value: object) -> Source | None:
        if not isinstance(value, dict):
            self.error(file, where, "source", "missing, or not a mapping of publisher, title and url")
            return None
        for unknown in sorted(set(value) - SOURCE_FIELDS):
            self.error(file, where, f"source.{unknown}", "unknown field")
        publisher = self._required_text(file, where, "source.publisher", value.get("publisher"))
        title = self._required_text(file, where, "source.title", value.get("title"))
        url = self._required_text(file, where, "source.url", value.get("url"))
        if url is not None:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or " " in url:
                self.error(file, where, "source.url", f"'{url}' is not an http(s) URL")
                url = None
        if publisher and title and url:
            return Source(publisher, title, url)
        return None

    def _string_list(self, file: str, where: str | None, field_name: str, value: object) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(file, where, field_name, "must be a list")
            return []
        items: list[str] = []
        for item in value:
            if not isinstance(item, (str, int)) or not str(item).strip():
                self.error(file, where, field_name, f"entries must be non-empty text, got {item!r}")
                continue
            items.append(str(item).strip())
        return items

    def check_links(self) -> None:
        """Every ``supersedes`` id exists, is not newer, and the links form no cycle."""
        for passage in self.passages.values():
            for target_id in passage.supersedes:
                target = self.passages.get(target_id)
                if target is None:
                    self.error(passage.file.name, passage.id, "supersedes", f"unknown passage id '{target_id}'")
                elif target_id == passage.id:
                    self.error(passage.file.name, passage.id, "supersedes", "a passage cannot supersede itself")
                elif target.date > passage.date:
                    self.error(
                        passage.file.name, passage.id, "supersedes",
                        f"'{target_id}' ({target.date}) is newer than this passage ({passage.date})",
                    )
        for cycle in _find_cycles(self.passages):
            first = self.passages[cycle[0]]
            self.error(first.file.name, first.id, "supersedes", "cycle: " + " -> ".join([*cycle, cycle[0]]))

    def check_near_duplicates(self) -> None:
        from rapidfuzz import fuzz, process

        passages = list(self.passages.values())
        if len(passages) < 2:
            return
        texts = [p.text for p in passages]
        scores = process.cdist(texts, texts, scorer=fuzz.ratio, score_cutoff=NEAR_DUPLICATE_RATIO, workers=1)
        for i, j in zip(*scores.nonzero(), strict=True):
            if i < j:
                a, b = passages[i], passages[j]
                self.warn(
                    a.file.name, a.id, "text",
                    f"near-duplicate of {b.id} in {b.file.name} (similarity {scores[i, j]:.0f})",
                )


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
