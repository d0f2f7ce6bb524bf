"""The parse cache: each knowledge file's validated content, keyed by the hash of the file's bytes.

Parsing YAML and validating every passage is most of a start's work; a file whose bytes did not
change validates the same way again, so its result is kept (as JSON, never pickled) and reused.
A file whose hash differs from its entry is parsed and validated afresh. Only files that validated
without any error get an entry; cross-file rules (duplicate ids, ``supersedes`` links) still run on
every load. Each entry carries the sha256 of its own JSON text: an entry that was altered, truncated
or garbled since it was written is ignored (the file is parsed again), never trusted.

Layout (one line each, in the index folder)::

    {"format": 1}
    F <file name> <sha256 of the file's bytes> <sha256 of the payload> <payload: JSON>
    W <knowledge base version> <sha256 of the payload> <payload: JSON, the folder's name and the warnings>

A ``W`` entry is written only for a version whose rules across files (``supersedes`` links) passed:
those rules depend only on the passages, which the version hashes, so a load that finds its version
there takes the warnings as they are and skips those rules (and the near-duplicate scan).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.files import atomic_write_text
from bot.core.models import Passage, Source, ValidationIssue

log = logging.getLogger(__name__)

CACHE_FILE = "knowledge-cache.jsonl"
FORMAT = 1
_HEADER = json.dumps({"format": FORMAT})


class CacheEntryError(ValueError):
    """An entry's payload does not have the shape the cache writes."""


@dataclass(frozen=True)
class CachedFile:
    """One knowledge file as it validated: its topic header and its passages (as records)."""

    source_hash: str
    slug: str
    title: str
    examples: tuple[str, ...]
    records: tuple[dict[str, Any], ...]
    latest_date: str  # the newest date or checked date in the file: valid only from that day on

    def payload(self) -> str:
        return json.dumps({"slug": self.slug, "title": self.title, "examples": list(self.examples),
                           "passages": list(self.records), "latest_date": self.latest_date}, ensure_ascii=False)

    def passages(self, path: Path) -> list[Passage]:
        """The passages, rebuilt exactly as validation made them; ``CacheEntryError`` if a record is malformed."""
        try:
            return [_passage(record, path) for record in self.records]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CacheEntryError(f"malformed passage record: {exc}") from exc


@dataclass(frozen=True)
class CachedWarnings:
    """The warnings of a knowledge base version whose rules across files passed, in the folder so named."""

    directory: str
    issues: tuple[ValidationIssue, ...]


@dataclass
class KnowledgeCache:
    files: dict[str, CachedFile]
    warnings: dict[str, CachedWarnings]  # by knowledge base version


def source_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_file(source: str, slug: str, title: str, examples: tuple[str, ...], passages: list[Passage]) -> CachedFile:
    dates = [d.isoformat() for p in passages for d in (p.date, p.checked) if d is not None]
    return CachedFile(source, slug, title, tuple(examples), tuple(p.to_record() for p in passages),
                      max(dates, default=""))


def read_cache(path: Path | None) -> KnowledgeCache:
    """The entries of ``path`` that are intact; an unreadable or foreign file is an empty cache."""
    cache = KnowledgeCache({}, {})
    if path is None:
        return cache
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return cache
    if not lines or lines[0] != _HEADER:
        return cache
    for number, line in enumerate(lines[1:], start=2):
        try:
            _read_line(line, cache)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("ignoring line %d of the knowledge parse cache %s: %s", number, path, exc)
    return cache


def _read_line(line: str, cache: KnowledgeCache) -> None:
    kind, _, rest = line.partition(" ")
    if kind == "F":
        name, source, digest, payload = rest.split(" ", 3)
        data = _verified(payload, digest)
        cache.files[name] = CachedFile(
            source, _text(data["slug"]), _text(data["title"]), tuple(map(_text, data["examples"])),
            tuple(_mapping(record) for record in data["passages"]), _text(data["latest_date"]),
        )
    elif kind == "W":
        version, digest, payload = rest.split(" ", 2)
        data = _verified(payload, digest)
        cache.warnings[version] = CachedWarnings(_text(data["directory"]), tuple(map(_issue, data["issues"])))
    else:
        raise ValueError(f"unknown entry kind {kind[:10]!r}")


def write_cache(path: Path, files: dict[str, CachedFile], warnings: dict[str, CachedWarnings]) -> None:
    """Replace the cache with these entries (atomically; a failure only costs time at the next start)."""
    lines = [_HEADER]
    for name, entry in files.items():
        payload = entry.payload()
        lines.append(f"F {name} {entry.source_hash} {_digest(payload)} {payload}")
    for version, cached in warnings.items():
        payload = json.dumps({"directory": cached.directory, "issues": [_issue_record(i) for i in cached.issues]},
                             ensure_ascii=False)
        lines.append(f"W {version} {_digest(payload)} {payload}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "\n".join(lines) + "\n")
    except OSError as exc:
        log.warning("cannot write the knowledge parse cache %s: %s", path, exc)


def _digest(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _verified(payload: str, digest: str) -> Any:
    if _digest(payload) != digest:
        raise ValueError("its content does not match its hash")
    return json.loads(payload)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return value


def _date(value: object) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(_text(value))


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(map(_text, value))


def _passage(record: dict[str, Any], path: Path) -> Passage:
    source = _mapping(record["source"])
    date = _date(record["date"])
    if date is None or not isinstance(source["found"], bool) or not isinstance(source["repost"], bool):
        raise ValueError("a date and boolean source flags are required")
    note = record["note"]
    return Passage(
        id=_text(record["id"]), title=_text(record["title"]), text=_text(record["text"]), date=date,
        source=Source(_text(source["publisher"]), _text(source["title"]), _text(source["url"]),
                      found=source["found"], repost=source["repost"]),
        topic=_text(record["topic"]), file=path, tags=_texts(record["tags"]), aliases=_texts(record["aliases"]),
        supersedes=_texts(record["supersedes"]), kind=_text(record["kind"]),  # type: ignore[arg-type]
        corrects=_texts(record["corrects"]), checked=_date(record["checked"]),
        note=None if note is None else _text(note),
    )


def _issue_record(issue: ValidationIssue) -> dict[str, Any]:
    return {"file": issue.file, "passage": issue.passage, "field": issue.field, "message": issue.message,
            "severity": issue.severity}


def _issue(item: object) -> ValidationIssue:
    data = _mapping(item)
    passage, field = data["passage"], data["field"]
    return ValidationIssue(
        _text(data["file"]), None if passage is None else _text(passage), None if field is None else _text(field),
        _text(data["message"]), "warning" if data["severity"] == "warning" else "error",
    )
