"""``spacebot ask`` opens the engine with the garbage collector paused, and leaves it as it found it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from bot import cli


def test_ask_leaves_the_garbage_collector_running_and_nothing_frozen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    frozen_before = gc.get_freeze_count()
    code = cli.main(["--knowledge", str(tmp_path / "no-knowledge"), "--index", str(tmp_path / "index"), "ask", "hi"])
    assert code == 1  # the knowledge folder does not exist: the engine does not open
    assert "does not validate" in capsys.readouterr().err
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen_before


def test_quick_start_pauses_collection_while_the_engine_opens_then_freezes_what_it_made() -> None:
    with cli._quick_start():
        paused = not gc.isenabled()
        made = [[] for _ in range(1000)]
    try:
        assert paused
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made)
    finally:
        gc.unfreeze()


def test_ask_run_as_the_program_leaves_its_start_up_frozen_for_a_quick_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["spacebot", "--knowledge", str(tmp_path / "no-knowledge"), "--index", str(tmp_path / "index"), "ask", "hi"]
    monkeypatch.setattr("sys.argv", argv)
    try:
        assert cli.main() == 1
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # the process exits next: exiting need not walk them again
    finally:
        gc.unfreeze()
