"""The manifest of an index snapshot: what built it, what it holds, and the hash of every data file.

Validated on every load: a manifest that is missing, not UTF-8, not JSON, or has a field of the wrong
type or inconsistent with the others makes its snapshot unusable, reported as ``IndexUnusableError``
naming the snapshot and the field, never as another exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self, get_args

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
    plain = _plain_manifest(raw)
    if plain is not None:
        return Manifest.model_construct(**plain)
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise IndexUnusableError(f"invalid manifest in {folder.name}: {describe(exc)}") from exc


def _plain_manifest(raw: bytes) -> dict[str, Any] | None:
    """The manifest's fields when it is exactly what ``Manifest`` accepts, checked by hand; else None.

    Building ``Manifest``'s validator costs a start more than the rest of reading the index; a manifest
    as the store writes it passes these checks (each as strict as the model's), and anything else is
    left to the model, which then says what is wrong.
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:  # not UTF-8, not JSON
        return None
    if not isinstance(data, dict):
        return None
    fields = {name: data[name] for name in Manifest.model_fields if name in data}
    ids, hashes, files = fields.get("ids"), fields.get("passage_hashes"), fields.get("files")
    checks = (
        _is_int(fields.get("format_version")) and fields["format_version"] == FORMAT_VERSION,
        all(_is_text(fields.get(name), minimum=1) for name in ("model", "encoder", "kb_hash")),
        _is_int(fields.get("dimension")) and fields["dimension"] > 0,
        _is_int(fields.get("count")) and fields["count"] >= 0,
        fields.get("index_kind", "flat") in get_args(IndexKind),
        isinstance(ids, list) and all(_is_text(i) for i in ids),
        all(_is_text_mapping(fields.get(name, {})) for name in ("passage_hashes", "versions", "files")),
        _is_text(fields.get("built_at", "")),
    )
    if not (all(checks) and isinstance(ids, list) and isinstance(hashes, dict) and isinstance(files, dict)):
        return None
    if len(ids) != fields["count"] or len(set(ids)) != len(ids) or hashes.keys() != set(ids):
        return None
    if any(name not in files for name in DATA_FILES):
        return None
    return {**fields, "ids": tuple(ids)}


def _is_int(value: object) -> bool:
    return type(value) is int  # strict: not a bool, not a float, not text


def _is_text(value: object, minimum: int = 0) -> bool:
    return isinstance(value, str) and len(value) >= minimum


def _is_text_mapping(value: object) -> bool:
    return isinstance(value, dict) and all(_is_text(k) and _is_text(v) for k, v in value.items())


def describe(error: ValidationError) -> str:
    """The first few validation errors as ``field: message`` (messages never quote the offending value)."""
    parts = []
    for item in error.errors()[:REPORTED_ERRORS]:
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    more = error.error_count() - REPORTED_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
