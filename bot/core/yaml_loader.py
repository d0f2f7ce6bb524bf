"""Strict, fast YAML loading for hand-edited knowledge files.

On top of PyYAML's safe loading, a knowledge file must not:

- repeat a key in a mapping: a copied passage block that lost its leading ``- `` merges into the
  passage above it, and PyYAML would silently keep the last value of each key;
- use anchors, aliases or merge keys: a few hundred bytes of nested aliases expand to gigabytes
  ("billion laughs"), and a passage shared by reference is not what a moderator means to write.

Dates stay text, so a bad date is reported on its field rather than crashing the loader. libyaml's
parser (``yaml.CSafeLoader``) is used when PyYAML was built with it; construction, where these
checks live, is Python code with either parser, so both behave the same.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

__all__ = ["C_LOADER_AVAILABLE", "StrictYamlError", "load_yaml"]

C_LOADER_AVAILABLE = hasattr(yaml, "CSafeLoader")
MAX_QUOTED_KEY = 40
MAX_PROBLEM_CHARS = 120
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# A node's properties come first: an optional tag, then an anchor ("!!str &name", "&name").
_ANCHOR_AT_NODE_START = re.compile(r"(?:![^\s&]*\s+)?&([^\s,\[\]{}]+)")


class StrictYamlError(Exception):
    """The text is not a knowledge file's kind of YAML; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class _StrictConstruction:
    """Mixed into a PyYAML loader: refuses duplicate keys, anchors, aliases and merge keys."""

    source_text: str = ""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node in self.constructed_objects or node in self.recursive_objects:  # type: ignore[attr-defined]
            # The composer hands an alias over as the very node it names: a second visit is an alias.
            raise StrictYamlError("aliases (*name) are not allowed in knowledge files; write the value out",
                                  _line(node))
        anchor = self._anchor_at(node)
        if anchor is not None:
            raise StrictYamlError(f"anchors (&{_short(anchor)}) and aliases are not allowed in knowledge files; "
                                  "write each value out", _line(node))
        return super().construct_object(node, deep=deep)  # type: ignore[misc]

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> Any:
        _refuse_duplicate_and_merge_keys(node)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]

    def _anchor_at(self, node: Node) -> str | None:
        index = getattr(node.start_mark, "index", None)
        if index is None or not self.source_text.startswith(("&", "!"), index):
            return None
        match = _ANCHOR_AT_NODE_START.match(self.source_text, index)
        return match.group(1) if match else None


def _refuse_duplicate_and_merge_keys(node: MappingNode) -> None:
    seen: dict[tuple[str, str], int | None] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            raise StrictYamlError("merge keys (<<) are not allowed in knowledge files", _line(key_node))
        if not isinstance(key_node, ScalarNode):
            continue
        key = (key_node.tag, key_node.value)
        if key in seen:
            raise StrictYamlError(
                f"duplicate key '{_short(key_node.value)}' (first at line {seen[key]}): a passage block "
                "that lost its leading '- ' merges into the one above it",
                _line(key_node),
            )
        seen[key] = _line(key_node)


def _line(node: Node) -> int | None:
    mark = node.start_mark
    return mark.line + 1 if mark is not None else None


def _short(value: str, limit: int = MAX_QUOTED_KEY) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _without_timestamps(resolvers: dict[Any, list[tuple[str, Any]]]) -> dict[Any, list[tuple[str, Any]]]:
    return {
        first: [(tag, regexp) for tag, regexp in entries if tag != _TIMESTAMP_TAG]
        for first, entries in resolvers.items()
    }


class PureLoader(_StrictConstruction, yaml.SafeLoader):
    """The pure-Python parser, for PyYAML builds without libyaml."""


PureLoader.yaml_implicit_resolvers = _without_timestamps(yaml.SafeLoader.yaml_implicit_resolvers)

if C_LOADER_AVAILABLE:

    class FastLoader(_StrictConstruction, yaml.CSafeLoader):  # type: ignore[name-defined, misc]
        """libyaml's parser with the same Python-level construction checks."""

    FastLoader.yaml_implicit_resolvers = _without_timestamps(yaml.CSafeLoader.yaml_implicit_resolvers)
    DefaultLoader: type = FastLoader
else:  # pragma: no cover - depends on how PyYAML was built
    DefaultLoader = PureLoader


def load_yaml(text: str, loader: type | None = None) -> Any:
    """Parse one YAML document strictly; raises ``StrictYamlError`` naming the line of the first problem."""
    text = text.removeprefix("\ufeff")  # both parsers then count characters from the same place
    instance = (loader or DefaultLoader)(text)
    instance.source_text = text
    try:
        return instance.get_single_data()
    except StrictYamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot parse"
        line = mark.line + 1 if mark else None
        raise StrictYamlError(f"malformed YAML: {_short(problem, MAX_PROBLEM_CHARS)}", line) from None
    except yaml.YAMLError as exc:
        raise StrictYamlError(f"malformed YAML: {_short(str(exc).splitlines()[0], MAX_PROBLEM_CHARS)}") from None
    except RecursionError:
        raise StrictYamlError("malformed YAML: nested too deeply") from None
    finally:
        instance.dispose()
