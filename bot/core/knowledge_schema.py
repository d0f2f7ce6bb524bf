"""The knowledge file format as pydantic models: field-level validation and the published JSON Schema.

A topic file is validated in two steps so that every error can name its passage: the topic's own
fields (``TopicHeader``), then each passage on its own (``PassageEntry``). ``TopicFile`` describes
the whole file for the JSON Schema that editors use (``spacebot schema``). Rules that involve
several fields of a passage, or several passages, live in ``knowledge_checks``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from bot.core.knowledge_rules import (
    MAX_TEXT_CHARS,
    SLUG,
    correction_problem,
    passage_text_problem,
    placeholder_title_problem,
    quote,
    url_problem,
)
from bot.core.models import PassageKind

KINDS: tuple[str, ...] = get_args(PassageKind)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)  # no context is given, so braces in values stay as they are


def _required_text(value: object) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _fail("missing", "missing or empty")
    if not isinstance(value, str):
        raise _fail("not_text", f"must be text, not {type(value).__name__}")
    return " ".join(value.split())


def _list_entry(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise _fail("bad_entry", f"entries must be non-empty text, got {quote(value)}")
    return " ".join(str(value).split())


def _none_is_empty(value: object) -> object:
    return [] if value is None else value


def _kebab_case(value: str) -> str:
    if not SLUG.match(value):
        raise _fail("not_kebab_case", "must be kebab-case (a-z, 0-9, '-')")
    return value


def _real_headline(value: str) -> str:
    problem = placeholder_title_problem(value)
    if problem:
        raise _fail("placeholder_title", f"{quote(value)} {problem}")
    return value


def _page_url(value: str) -> str:
    problem = url_problem(value)
    if problem:
        raise _fail("not_a_page", f"{quote(value)} {problem}")
    return value


def _passage_text(value: str) -> str:
    problem = passage_text_problem(value)
    if problem:
        raise _fail("text_limits", problem)
    return value


def _statement(value: str) -> str:
    problem = correction_problem(value)
    if problem:
        raise _fail("not_a_statement", problem)
    return value


def _iso_date(value: object) -> dt.date:
    if value is None or value == "":
        raise _fail("missing", "missing or empty")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail("not_iso_date", f"{quote(value)} is not an ISO date (YYYY-MM-DD)")


def _not_in_the_future(value: dt.date, info: ValidationInfo) -> dt.date:
    today = (info.context or {}).get("today") or dt.date.today()
    if value > today:
        raise _fail("future_date", f"{value.isoformat()} is in the future (today is {today.isoformat()})")
    return value


Text = Annotated[str, BeforeValidator(_required_text), Field(json_schema_extra={"minLength": 1})]
Slug = Annotated[Text, AfterValidator(_kebab_case), Field(json_schema_extra={"pattern": SLUG.pattern})]
Headline = Annotated[Text, AfterValidator(_real_headline)]
PageUrl = Annotated[Text, AfterValidator(_page_url), Field(json_schema_extra={"pattern": "^https?://"})]
PassageText = Annotated[Text, AfterValidator(_passage_text), Field(json_schema_extra={"maxLength": MAX_TEXT_CHARS})]
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date), AfterValidator(_not_in_the_future)]
Entry = Annotated[str, BeforeValidator(_list_entry), Field(json_schema_extra={"minLength": 1})]
Entries = Annotated[list[Entry], BeforeValidator(_none_is_empty)]
Statement = Annotated[Text, AfterValidator(_statement), Field(json_schema_extra={"pattern": r"^[A-Z0-9].*\.$"})]
Statements = Annotated[list[Statement], BeforeValidator(_none_is_empty)]


class SourceEntry(BaseModel):
    """The page that states the passage's facts."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="Source")

    publisher: Text = Field(description="Who published the page; for a repost, name the original too.")
    title: Headline = Field(description="The page's real headline, as published.")
    url: PageUrl = Field(description="The page itself: no feeds, redirects, bare ?p= ids or tracking parameters.")
    found: StrictBool = Field(True, description="False when the page cannot be found again; then `note` is "
                                                "required and names the corroborating page.")
    repost: StrictBool = Field(False, description="True when the page is a repost, aggregator, scraper or proxy "
                                                  "rather than the outlet that published the report.")


_FOUND_FALSE_NEEDS_NOTE = {
    "if": {"properties": {"source": {"properties": {"found": {"const": False}}, "required": ["found"]}},
           "required": ["source"]},
    "then": {"required": ["note"]},
}


class PassageEntry(BaseModel):
    """One dated, sourced passage: the unit the bot answers with."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="Passage", json_schema_extra=_FOUND_FALSE_NEEDS_NOTE)

    id: Slug = Field(description="kebab-case, unique across the whole knowledge base.")
    title: Headline = Field(description="A short headline, shown in answers and autocomplete.")
    text: PassageText = Field(description="One to five sentences, at most 900 characters, in our own words.")
    date: IsoDate = Field(description="When the fact or position was published (YYYY-MM-DD); not in the future.")
    source: SourceEntry = Field(description="The cited page: publisher, real headline and address.")
    kind: PassageKind = Field("event", description="event (happened), plan (not yet happened), proposal (not in "
                                                   "force) or background (what something is).")
    tags: Entries = Field(default_factory=list, description="Lower-case labels.")
    aliases: Entries = Field(default_factory=list, description="Names and acronyms people use for the subject.")
    supersedes: Entries = Field(default_factory=list, description="Ids of earlier passages this one replaces.")
    corrects: Statements = Field(default_factory=list, description="Common misbeliefs this passage corrects, "
                                                                   "each one sentence ending with a period.")
    checked: IsoDate | None = Field(None, description="When the cited page was last read and found to state "
                                                      "the passage's facts (YYYY-MM-DD).")
    note: Text | None = Field(None, description="For moderators only; never shown to users.")


class _TopicFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: Slug = Field(description="The topic's slug: the file name without .yaml.")
    title: Text = Field(description="The topic's title, shown in /topics.")
    examples: Entries = Field(default_factory=list, description="Example questions offered by autocomplete.")


class TopicHeader(_TopicFields):
    """A topic file's own fields; its passages are validated one by one."""

    passages: list[Any] = Field(min_length=1)


class TopicFile(_TopicFields):
    """A whole topic file, ``knowledge/<topic>.yaml``."""

    model_config = ConfigDict(title="Knowledge topic file")

    passages: list[PassageEntry] = Field(min_length=1, description="The topic's passages, in any order.")


def knowledge_json_schema() -> dict[str, Any]:
    """The JSON Schema of a topic file, for editors (yaml-language-server) to check files as they type."""
    schema = TopicFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


_MESSAGES = {
    "missing": "missing or empty",
    "extra_forbidden": "unknown field",
    "list_type": "must be a list",
    "bool_type": "must be true or false",
    "string_type": "must be text",
}


def error_fields(exc: ValidationError) -> list[tuple[str | None, str]]:
    """Each of pydantic's errors as (field path such as ``source.url``, reason)."""
    found: list[tuple[str | None, str]] = []
    for error in exc.errors(include_url=False):
        names = [part for part in error["loc"] if isinstance(part, str)]
        positions = [part for part in error["loc"] if isinstance(part, int)]
        field = ".".join(names) or None
        message = _message(field, error)
        if positions:
            message = f"entry {positions[-1] + 1}: {message}"
        found.append((field, message))
    return found


def _message(field: str | None, error: Mapping[str, Any]) -> str:
    kind = error["type"]
    value = error.get("input")
    if field == "passages":
        return "must be a non-empty list of passages"
    if kind == "literal_error" and field == "kind":
        return f"must be one of {', '.join(KINDS)}, not {quote(value)}"
    if kind in ("model_type", "dict_type"):
        return "missing or empty" if value is None else "must be a mapping of publisher, title and url"
    if kind == "string_type":
        return f"must be text, not {type(value).__name__}"
    return _MESSAGES.get(kind) or str(error["msg"])
