"""Reading one knowledge file at a time: YAML, field validation, and what is collected across files.

``load_knowledge`` (in ``knowledge``) drives a :class:`Collector` over the files; each issue names
the file, the passage (by id, or by position when it has no usable id), the field and the reason.
YAML parsing and the pydantic models are imported only when a file has to be parsed: a start whose
files all match the parse cache (``knowledge_cache``) needs neither.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bot.core.knowledge_cache import CachedFile, CacheEntryError, cached_file, source_hash
from bot.core.models import Passage, Source, Topic, ValidationIssue

if TYPE_CHECKING:
    from bot.core.knowledge_schema import PassageEntry, TopicHeader

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 300
MAX_LABEL_CHARS = 60


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _issue(file: str, passage: str | None, field_name: str | None, message: str,
           severity: Literal["error", "warning"]) -> ValidationIssue:
    """An issue whose every part is short, whatever the file holds (a field name is a key the file chose)."""
    field_name = _cap(field_name, MAX_LABEL_CHARS) if field_name else field_name
    return ValidationIssue(file, passage, field_name, _cap(message, MAX_MESSAGE_CHARS), severity)


class Collector:
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
        self.parsed: list[str] = []  # names of the files parsed (not taken from the cache)

    def invalid_ids(self) -> set[str]:
        """Ids of passages that were found but did not validate."""
        return set(self._id_files) - set(self.passages)

    def error(self, file: str, passage: str | None, field_name: str | None, message: str) -> None:
        self.errors.append(_issue(file, passage, field_name, message, "error"))

    def warn(self, file: str, passage: str | None, field_name: str | None, message: str) -> None:
        self.warnings.append(_issue(file, passage, field_name, message, "warning"))

    def read_file(self, path: Path, cached: CachedFile | None = None) -> CachedFile | None:
        """Read one file (from ``cached`` when its bytes match); its cache entry if it validated without error."""
        name = path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.error(name, None, None, f"cannot read file: {exc}")
            return None
        digest = source_hash(data)
        if cached is not None and cached.source_hash == digest and cached.latest_date <= self.today.isoformat():
            try:
                return self._replay(path, cached)
            except CacheEntryError as exc:
                log.warning("cached parse of %s is unusable (%s); parsing the file", name, exc)
        errors_before = len(self.errors)
        self.parsed.append(name)
        parsed = self._parse(path, data)
        if parsed is None or len(self.errors) > errors_before:
            return None
        topic, examples = parsed
        return cached_file(digest, topic.slug, topic.title, examples, [self.passages[i] for i in topic.passage_ids])

    def _parse(self, path: Path, data: bytes) -> tuple[Topic, tuple[str, ...]] | None:
        from bot.core.yaml_loader import StrictYamlError, load_yaml

        name = path.name
        try:
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text() reads it
            document = load_yaml(text)
        except StrictYamlError as problem:
            self.error(name, None, None, str(problem))
            return None
        except UnicodeDecodeError as exc:
            self.error(name, None, None, f"cannot read file: {exc}")
            return None
        if not isinstance(document, dict):
            self.error(name, None, None, "expected a mapping with 'topic', 'title' and 'passages'")
            return None
        return self._read_topic(path, document)

    def _replay(self, path: Path, cached: CachedFile) -> CachedFile:
        """Register a file as it validated before; only the rules across files are checked again."""
        passages = cached.passages(path)
        if cached.slug != path.stem or any(p.topic != cached.slug for p in passages):
            raise CacheEntryError("its topic does not match the file name")
        name = path.name
        ids: list[str] = []
        for passage in passages:
            if passage.id in self._id_files:
                self.error(name, passage.id, "id", f"duplicate id: also defined in {self._id_files[passage.id]}")
                continue
            self._id_files[passage.id] = name
            self.passages[passage.id] = passage
            ids.append(passage.id)
        self._add_topic(Topic(cached.slug, cached.title, path, tuple(ids)), cached.examples)
        return cached

    def _add_topic(self, topic: Topic, examples: tuple[str, ...]) -> None:
        if topic.slug in self._topic_files:
            other = self._topic_files[topic.slug]
            self.error(topic.file.name, None, "topic", f"'{topic.slug}' is also the topic of {other}")
            return
        self._topic_files[topic.slug] = topic.file.name
        self.topics[topic.slug] = topic
        self.examples.extend(examples)

    def _read_topic(self, path: Path, document: dict[str, Any]) -> tuple[Topic, tuple[str, ...]] | None:
        from pydantic import ValidationError

        from bot.core.knowledge_schema import TopicHeader, error_fields

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
            return None
        topic = slug or path.stem
        ids = [self._read_passage(path, topic, position, raw) for position, raw in enumerate(raw_passages, 1)]
        if header and slug:
            result = Topic(slug, header.title, path, tuple(i for i in ids if i))
            self._add_topic(result, tuple(header.examples))
            return result, tuple(header.examples)
        return None

    def _read_passage(self, path: Path, topic: str, position: int, raw: object) -> str | None:
        from pydantic import ValidationError

        from bot.core.knowledge_checks import passage_field_issues
        from bot.core.knowledge_schema import PassageEntry, error_fields

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
    from bot.core.knowledge_rules import SLUG

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
