"""The manifest of an index snapshot: what built it, what it holds, and the hash of every data file.

Validated on every load: a manifest that is missing, not UTF-8, not JSON, or has a field of the wrong
type or inconsistent with the others makes its snapshot unusable, reported as ``IndexUnusableError``
naming the snapshot and the field, never as another exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.core.vector_index import IndexKind

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FAISS_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
PASSAGES_FILE = "passages.jsonl"
KNOWLEDGE_FILE = "knowledge.json"
DATA_FILES = (FAISS_FILE, VECTORS_FILE, PASSAGES_FILE, KNOWLEDGE_FILE)
REPORTED_ERRORS = 3  # validation errors quoted in a reason; the rest are counted


class IndexUnusableError(Exception):
    """The saved index cannot serve: missing, corrupt, truncated or built for something else."""


class Manifest(BaseModel):
    """``manifest.json``. Strict: a number written as text (or the reverse) is an error, not a guess."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", defer_build=True)

    format_version: int
    model: str = Field(min_length=1)
    encoder: str = Field(min_length=1)
    dimension: int = Field(gt=0)
    count: int = Field(ge=0)
    index_kind: IndexKind = "flat"
    kb_hash: str = Field(min_length=1)
    ids: tuple[str, ...]
    passage_hashes: dict[str, str]
    built_at: str = ""
    versions: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str]

    @field_validator("format_version")
    @classmethod
    def _readable_format(cls, value: int) -> int:
        if value != FORMAT_VERSION:
            raise ValueError(f"format version {value}, this build reads only {FORMAT_VERSION}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.ids) != self.count:
            raise ValueError(f"ids lists {len(self.ids)} passages, count says {self.count}")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("ids lists a passage twice")
        if self.passage_hashes.keys() != set(self.ids):
            raise ValueError("passage_hashes does not hash exactly the passages in ids")
        missing = [name for name in DATA_FILES if name not in self.files]
        if missing:
            raise ValueError(f"files lacks the hash of {', '.join(missing)}")
        return self


def read_manifest(folder: Path) -> Manifest:
    """The validated manifest of the snapshot in ``folder``; ``IndexUnusableError`` says what is wrong."""
    try:
        raw = (folder / MANIFEST).read_bytes()
    except OSError as exc:
        raise IndexUnusableError(f"unreadable manifest in {folder.name}: {exc.strerror or exc}") from exc
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise IndexUnusableError(f"invalid manifest in {folder.name}: {describe(exc)}") from exc


def describe(error: ValidationError) -> str:
    """The first few validation errors as ``field: message`` (messages never quote the offending value)."""
    parts = []
    for item in error.errors()[:REPORTED_ERRORS]:
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    more = error.error_count() - REPORTED_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
