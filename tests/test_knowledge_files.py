"""The knowledge folder as texts: what is read for publishing, and how a publication is written back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.knowledge import load_knowledge
from bot.core.knowledge_files import (
    KEEP_REPLACED,
    REPLACED_DIR,
    UnsafeFileNameError,
    is_knowledge_file_name,
    read_knowledge_files,
    write_knowledge_files,
)
from tests.support.kb import write_mini_kb


@pytest.mark.parametrize("name", ["russia-iss.yaml", "scope.md"])
def test_yaml_files_and_the_scope_are_knowledge_files(name: str) -> None:
    assert is_knowledge_file_name(name)


@pytest.mark.parametrize(
    "name", ["README.md", "notes.txt", ".hidden.yaml", "../up.yaml", "sub/topic.yaml", "/abs.yaml", "a\\b.yaml", ""]
)
def test_other_files_paths_and_hidden_files_are_not(name: str) -> None:
    assert not is_knowledge_file_name(name)


def test_reading_takes_the_knowledge_files_only(tmp_path: Path) -> None:
    knowledge = write_mini_kb(tmp_path / "knowledge")
    (knowledge / "README.md").write_text("for people\n", encoding="utf-8")
    (knowledge / "scope.md").write_text("Space policy.\n", encoding="utf-8")

    files = read_knowledge_files(knowledge)

    assert "README.md" not in files and files["scope.md"] == "Space policy.\n"
    assert set(files) == {p.name for p in knowledge.glob("*.yaml")} | {"scope.md"}


def test_writing_a_publication_reproduces_the_knowledge_base_and_keeps_other_files(tmp_path: Path) -> None:
    source = write_mini_kb(tmp_path / "source")
    (source / "moon.yaml").unlink()
    published = read_knowledge_files(source)
    target = write_mini_kb(tmp_path / "target")
    (target / "README.md").write_text("local notes\n", encoding="utf-8")
    (target / "space-debris.yaml").write_text("topic: local-edit\n", encoding="utf-8")

    touched = write_knowledge_files(target, published)

    assert read_knowledge_files(target) == published
    assert (target / "README.md").read_text(encoding="utf-8") == "local notes\n"
    assert sorted(touched) == ["moon.yaml", "space-debris.yaml"]  # removed, rewritten; the rest untouched
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]
    assert load_knowledge(target).knowledge.version == load_knowledge(source).knowledge.version  # type: ignore[union-attr]


def test_writing_the_same_files_again_touches_nothing(tmp_path: Path) -> None:
    knowledge = write_mini_kb(tmp_path / "knowledge")
    before = {p.name: p.stat().st_mtime_ns for p in knowledge.iterdir()}

    assert write_knowledge_files(knowledge, read_knowledge_files(knowledge)) == []
    assert {p.name: p.stat().st_mtime_ns for p in knowledge.iterdir()} == before


def test_a_publication_with_an_unsafe_name_writes_nothing_at_all(tmp_path: Path) -> None:
    knowledge = write_mini_kb(tmp_path / "knowledge")
    before = read_knowledge_files(knowledge)

    with pytest.raises(UnsafeFileNameError, match="escape"):
        write_knowledge_files(knowledge, {"new.yaml": "topic: new\n", "../escape.yaml": "topic: x\n"})

    assert read_knowledge_files(knowledge) == before
    assert not (tmp_path / "escape.yaml").exists()


def test_a_local_edit_replaced_by_a_publication_is_kept_where_the_loader_never_reads(tmp_path: Path) -> None:
    source = write_mini_kb(tmp_path / "source")
    (source / "moon.yaml").unlink()
    published = read_knowledge_files(source)
    target = write_mini_kb(tmp_path / "target")
    edited = (target / "space-debris.yaml").read_text(encoding="utf-8") + "# a moderator's unreloaded edit\n"
    (target / "space-debris.yaml").write_text(edited, encoding="utf-8")
    removed = (target / "moon.yaml").read_text(encoding="utf-8")

    write_knowledge_files(target, published)

    [kept] = (target / REPLACED_DIR).iterdir()
    assert (kept / "space-debris.yaml").read_text(encoding="utf-8") == edited
    assert (kept / "moon.yaml").read_text(encoding="utf-8") == removed
    assert sorted(p.name for p in kept.iterdir()) == ["moon.yaml", "space-debris.yaml"]  # not the unchanged ones
    assert read_knowledge_files(target) == published  # neither published again nor loaded
    assert load_knowledge(target).knowledge.version == load_knowledge(source).knowledge.version  # type: ignore[union-attr]


def test_only_the_newest_sets_of_replaced_texts_are_kept(tmp_path: Path) -> None:
    knowledge = write_mini_kb(tmp_path / "knowledge")
    for round_number in range(KEEP_REPLACED + 3):
        write_knowledge_files(knowledge, {**read_knowledge_files(knowledge), "scope.md": f"Scope {round_number}.\n"})

    kept = sorted((knowledge / REPLACED_DIR).iterdir())
    assert len(kept) == KEEP_REPLACED
    assert (kept[-1] / "scope.md").read_text(encoding="utf-8") == f"Scope {KEEP_REPLACED + 1}.\n"
