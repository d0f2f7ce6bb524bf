"""The published JSON Schema of a topic file: what `spacebot schema` prints and the copy editors read."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from bot import cli
from bot.core.knowledge_schema import KINDS, knowledge_json_schema
from bot.core.models import Passage, Source
from tests.conftest import SHIPPED_KNOWLEDGE

PUBLISHED = SHIPPED_KNOWLEDGE / "knowledge.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return knowledge_json_schema()


def _passage_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["$defs"][schema["properties"]["passages"]["items"]["$ref"].rsplit("/", 1)[-1]]


def _source_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["$defs"][_passage_schema(schema)["properties"]["source"]["$ref"].rsplit("/", 1)[-1]]


def test_schema_command_prints_the_schema_as_json(capsys: pytest.CaptureFixture[str], schema: dict[str, Any]) -> None:
    assert cli.main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == schema
    assert printed["$schema"].startswith("https://json-schema.org/")


def test_published_schema_file_is_current(schema: dict[str, Any]) -> None:
    """Regenerate with `spacebot schema > knowledge/knowledge.schema.json` after changing the format."""
    assert json.loads(PUBLISHED.read_text(encoding="utf-8")) == schema


def test_schema_requires_the_topic_and_passage_fields_and_forbids_others(schema: dict[str, Any]) -> None:
    passage = _passage_schema(schema)
    source = _source_schema(schema)
    assert set(schema["required"]) == {"topic", "title", "passages"}
    assert set(passage["required"]) == {"id", "title", "text", "date", "source"}
    assert set(source["required"]) == {"publisher", "title", "url"}
    assert schema["additionalProperties"] is False
    assert passage["additionalProperties"] is False
    assert source["additionalProperties"] is False


def test_schema_describes_every_field_a_passage_is_built_from(schema: dict[str, Any]) -> None:
    """Every Passage and Source field that comes from the file is in the schema, and nothing else."""
    derived = {"topic", "file"}  # from the file's name and place, not from a passage's fields
    passage_fields = {f.name for f in dataclasses.fields(Passage)} - derived
    assert set(_passage_schema(schema)["properties"]) == passage_fields
    assert set(_source_schema(schema)["properties"]) == {f.name for f in dataclasses.fields(Source)}


def test_schema_states_kinds_booleans_dates_and_the_id_pattern(schema: dict[str, Any]) -> None:
    passage = _passage_schema(schema)["properties"]
    source = _source_schema(schema)["properties"]
    assert passage["kind"]["enum"] == list(KINDS)
    assert passage["kind"]["default"] == "event"
    assert (source["found"]["type"], source["found"]["default"]) == ("boolean", True)
    assert (source["repost"]["type"], source["repost"]["default"]) == ("boolean", False)
    assert passage["date"]["format"] == "date"
    assert {"type": "string", "format": "date"}.items() <= passage["checked"]["anyOf"][0].items()
    pattern = re.compile(passage["id"]["pattern"])
    assert pattern.match("russia-iss-2023-04-through-2028")
    assert not pattern.match("Russia_ISS")
    assert passage["text"]["maxLength"] == 900


def test_schema_requires_a_note_when_the_source_was_not_found(schema: dict[str, Any]) -> None:
    passage = _passage_schema(schema)
    assert passage["if"]["properties"]["source"]["properties"]["found"] == {"const": False}
    assert passage["then"] == {"required": ["note"]}


def test_every_field_has_a_description_for_editor_hovers(schema: dict[str, Any]) -> None:
    for model in (_passage_schema(schema), _source_schema(schema)):
        missing = [name for name, spec in model["properties"].items() if "description" not in spec]
        assert not missing, missing
