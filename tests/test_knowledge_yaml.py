"""Strict YAML reading of knowledge files: duplicate keys, anchors and aliases, the C loader, capped messages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from bot import cli
from bot.core import yaml_loader
from bot.core.knowledge import load_knowledge
from bot.core.yaml_loader import PureLoader, StrictYamlError, load_yaml
from tests.conftest import SHIPPED_KNOWLEDGE
from tests.support.kb import mini_documents, write_documents, write_raw

LOADERS = [pytest.param(PureLoader, id="pure-python")]
if yaml_loader.C_LOADER_AVAILABLE:
    LOADERS.append(pytest.param(yaml_loader.FastLoader, id="libyaml"))

SECOND_MOON_ID = "moon-2021-03-ilrs-china-russia"


def _lose_the_dash(directory: Path) -> int:
    """Turn moon.yaml's second passage into keys of the first, as a careless copy does; returns that line."""
    path = directory / "moon.yaml"
    text = path.read_text(encoding="utf-8")
    marker = f"\n- id: {SECOND_MOON_ID}\n"
    assert marker in text
    line = text[: text.index(marker)].count("\n") + 2
    path.write_text(text.replace(marker, f"\n  id: {SECOND_MOON_ID}\n"), encoding="utf-8")
    return line


def _bomb(levels: int, width: int) -> str:
    """A knowledge file whose tags expand to width**levels strings through nested aliases."""
    lines = ["topic: bomb", "title: Bomb", f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    lines += ["passages:", "  - id: bomb-1", f"    tags: [*l{levels - 1}]"]
    return "\n".join(lines) + "\n"


def test_passage_that_lost_its_dash_is_a_duplicate_key_error_naming_file_and_line(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    line = _lose_the_dash(directory)
    result = load_knowledge(directory)
    assert not result.ok
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    error = result.errors[0]
    assert error.file == "moon.yaml"
    assert "duplicate key 'id'" in error.message
    assert f"line {line}" in error.message


@pytest.mark.parametrize("loader", LOADERS)
def test_duplicate_keys_are_refused_by_both_parsers(loader: type) -> None:
    with pytest.raises(StrictYamlError) as caught:
        load_yaml("passages:\n  - id: a\n    title: One\n    title: Two\n", loader)
    assert caught.value.line == 4
    assert "duplicate key 'title' (first at line 3)" in str(caught.value)


@pytest.mark.parametrize("loader", LOADERS)
def test_same_key_in_different_mappings_is_not_a_duplicate(loader: type) -> None:
    data = load_yaml("passages:\n  - id: a\n    title: One\n  - id: b\n    title: Two\n", loader)
    assert [p["id"] for p in data["passages"]] == ["a", "b"]


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a: &x [1, 2]\nb: *x\n", 1, "anchors (&x)"),
        ("a: 1\nb: !!str &name value\n", 2, "anchors (&name)"),
        ("a: &unused 1\n", 1, "anchors (&unused)"),
        ("a: {x: 1}\nb:\n  <<: {x: 2}\n", 3, "merge keys"),
    ],
    ids=["alias", "tagged-anchor", "unused-anchor", "merge-key"],
)
def test_anchors_aliases_and_merge_keys_are_refused_with_their_line(
    loader: type, text: str, line: int, words: str
) -> None:
    with pytest.raises(StrictYamlError) as caught:
        load_yaml(text, loader)
    assert caught.value.line == line
    assert words in str(caught.value)


@pytest.mark.parametrize("loader", LOADERS)
def test_ampersands_inside_text_are_not_anchors(loader: type) -> None:
    data = load_yaml("title: R&D at AT&T\nquoted: '&not an anchor'\n", loader)
    assert data == {"title": "R&D at AT&T", "quoted": "&not an anchor"}


@pytest.mark.parametrize("loader", LOADERS)
def test_an_alias_is_refused_even_where_its_anchor_cannot_be_seen(loader: type) -> None:
    """The second construction of one node is an alias, whatever the text says (here: no text at all)."""
    instance = loader("a: &x [1]\nb: *x\n")  # source_text left empty: only the alias check can catch it
    try:
        with pytest.raises(StrictYamlError, match="aliases"):
            instance.get_single_data()
    finally:
        instance.dispose()


@pytest.mark.parametrize("loader", LOADERS)
def test_dates_stay_text_so_an_impossible_date_is_no_crash(loader: type) -> None:
    assert load_yaml("date: 2022-02-30\nok: 2022-09-29\n", loader) == {"date": "2022-02-30", "ok": "2022-09-29"}


def test_the_c_loader_is_the_default_when_pyyaml_has_it() -> None:
    assert hasattr(yaml, "CSafeLoader") == yaml_loader.C_LOADER_AVAILABLE
    if yaml_loader.C_LOADER_AVAILABLE:
        assert yaml_loader.DefaultLoader is yaml_loader.FastLoader
        assert issubclass(yaml_loader.FastLoader, yaml.CSafeLoader)


@pytest.mark.skipif(not yaml_loader.C_LOADER_AVAILABLE, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("path", sorted(SHIPPED_KNOWLEDGE.glob("*.yaml")), ids=lambda p: p.name)
def test_both_parsers_read_each_shipped_file_identically(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert load_yaml(text, yaml_loader.FastLoader) == load_yaml(text, PureLoader)


def test_billion_laughs_is_refused_at_once_with_one_short_error(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    write_raw(directory, "bomb.yaml", _bomb(levels=9, width=9))  # 9**9 strings if expanded
    started = time.perf_counter()
    result = load_knowledge(directory)
    assert time.perf_counter() - started < 5
    assert [(e.file, "anchors" in e.message) for e in result.errors] == [("bomb.yaml", True)]
    assert "line 3" in result.errors[0].message


def test_validate_prints_little_for_a_small_file_of_nested_aliases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BUG (issue 9): a 680-byte file made `validate` print 35 MB, quoting the expanded value."""
    directory = write_documents(tmp_path / "kb", mini_documents())
    bomb = _bomb(levels=6, width=6)  # 46,656 strings when expanded
    assert len(bomb.encode()) < 700
    write_raw(directory, "bomb.yaml", bomb)
    assert cli.main(["validate", str(directory)]) == 1
    out = capsys.readouterr().out
    assert len(out) < 2_000, out[:500]
    assert "bomb.yaml" in out


def test_unreadable_bytes_are_an_error_naming_the_file(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    (directory / "binary.yaml").write_bytes(b"topic: x\ntitle: \xff\xfe\n")
    result = load_knowledge(directory)
    assert [e.file for e in result.errors] == ["binary.yaml"]
    assert "cannot read" in result.errors[0].message


def test_deeply_nested_yaml_is_an_error_not_a_crash(tmp_path: Path) -> None:
    directory = write_documents(tmp_path / "kb", mini_documents())
    write_raw(directory, "deep.yaml", "topic: deep\ntitle: Deep\npassages: " + "[" * 5000 + "]" * 5000 + "\n")
    result = load_knowledge(directory)
    assert [e.file for e in result.errors] == ["deep.yaml"]
    assert "malformed YAML" in result.errors[0].message
