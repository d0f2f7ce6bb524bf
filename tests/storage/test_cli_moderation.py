"""``spacebot feedback|gaps|stats|forget|db`` on a SQLite database in a temporary folder."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.cli_moderation import add_commands, parse_since
from bot.storage import Storage
from bot.storage.database import head_revision
from tests.storage.support import closed_port, storage_settings, vote


def run(argv: Sequence[str]) -> int:
    """The commands as ``spacebot`` registers them (``add_commands`` on its subparsers)."""
    parser = argparse.ArgumentParser(prog="spacebot")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.handler(args, None))


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/data/spacebot.db"


def seed(url: str) -> dict[str, int]:
    async def fill() -> dict[str, int]:
        async with Storage(storage_settings(url)) as storage:
            wrong = await storage.record_feedback(vote(user_id=42, message_id=1, note="date changed"))
            helpful = await storage.record_feedback(vote(user_id=43, message_id=1, kind="helpful"))
            other = await storage.record_feedback(vote(user_id=44, message_id=2, kind="bad_source"))
            for question, axis in [("How much did JWST cost?", 0), ("What did JWST cost?", 0), ("Who leads ESA?", 3)]:
                vector = np.eye(8, dtype=np.float32)[axis]
                await storage.record_gap(question, "not_covered", guild_id=7, topics=("NASA budget",), vector=vector)
            await storage.count_question("answered", 7, "russia-iss", n=3)
            await storage.count_question("out_of_scope", 7)
            return {"wrong": wrong.report.id, "helpful": helpful.report.id, "other": other.report.id}

    return asyncio.run(fill())


def test_feedback_list_as_json_is_one_array_of_open_reports_newest_first(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed(db)
    assert run(["feedback", "list", "--database", db, "--format", "json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in reports] == [ids["other"], ids["wrong"]]
    assert reports[1]["note"] == "date changed" and reports[1]["passage_ids"][0] == "russia-iss-2026-03-deorbit"
    assert run(["feedback", "list", "--database", db, "--format", "json", "--helpful"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_feedback_list_as_csv_and_as_a_table(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed(db)
    assert run(["feedback", "list", "--database", db, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(r["id"]) for r in rows] == [ids["other"], ids["wrong"]]
    assert rows[0]["passage_ids"] == "russia-iss-2026-03-deorbit russia-iss-2025-07-bakanov"
    assert run(["feedback", "list", "--database", db]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["id", "created", "(UTC)", "vote"]
    assert "When is Russia leaving the ISS?" in table[2] and "bad_source" in table[2]


def test_feedback_resolve_marks_the_report_and_records_the_fix(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed(db)
    assert run(["feedback", "resolve", str(ids["wrong"]), "--database", db, "--fixed-in", "kb-2",
                "--note", "passage updated"]) == 0
    assert capsys.readouterr().out.strip() == f"Report #{ids['wrong']} resolved (fixed in kb-2)."
    assert run(["feedback", "resolve", str(ids["other"]), "--database", db, "--dismiss"]) == 0
    assert "dismissed" in capsys.readouterr().out
    assert run(["feedback", "list", "--database", db, "--status", "resolved", "--format", "json"]) == 0
    (resolved,) = json.loads(capsys.readouterr().out)
    assert (resolved["fixed_in"], resolved["resolution_note"]) == ("kb-2", "passage updated")
    assert run(["feedback", "list", "--database", db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_feedback_resolve_refuses_an_unknown_id_and_a_dismissal_with_a_fix(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db)
    assert run(["feedback", "resolve", "999", "--database", db]) == 1
    assert "no feedback report #999" in capsys.readouterr().err
    assert run(["feedback", "resolve", "1", "--database", db, "--dismiss", "--fixed-in", "kb-2"]) == 2


def test_gaps_lists_the_groups_with_their_most_typical_question(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed(db)
    assert run(["gaps", "--since", "30d", "--database", db, "--format", "json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert [(g["question"], g["count"]) for g in groups] == [("How much did JWST cost?", 2), ("Who leads ESA?", 1)]
    assert groups[0]["examples"] == ["What did JWST cost?"] and groups[0]["topics"] == ["NASA budget"]
    assert run(["gaps", "--database", db]) == 0
    table = capsys.readouterr().out
    assert "question (most typical wording)" in table and "How much did JWST cost?" in table


def test_stats_as_one_json_object_as_csv_and_as_a_table(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed(db)
    assert run(["stats", "--database", db, "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["questions"], stats["answered"], stats["declined"]) == (4, 3, {"out_of_scope": 1})
    assert stats["helpful_rate"] == pytest.approx(1 / 3) and stats["top_topics"] == [["russia-iss", 3]]
    assert run(["stats", "--database", db, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["section", "name", "value"] and ["questions", "answered", "3"] in rows
    assert ["votes", "helpful rate", "33%"] in rows
    assert run(["stats", "--database", db, "--since", "2w"]) == 0
    assert "top reported passages" in capsys.readouterr().out


def test_forget_deletes_the_users_reports_and_says_how_many(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed(db)
    assert run(["forget", "42", "--database", db]) == 0
    assert capsys.readouterr().out.strip() == "Deleted 1 feedback report(s) by user 42."
    assert run(["feedback", "list", "--database", db, "--format", "json", "--helpful"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_db_upgrade_creates_the_database_then_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fresh" / "spacebot.db"
    monkeypatch.setenv("SPACEBOT_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    assert run(["db", "upgrade"]) == 0
    assert f"upgraded from an empty database to revision {head_revision()}" in capsys.readouterr().out
    assert path.is_file()
    assert run(["db", "upgrade"]) == 0
    assert f"already at revision {head_revision()}" in capsys.readouterr().out


def test_db_purge_deletes_old_texts_only(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed(db)
    assert run(["db", "purge", "--database", db]) == 0
    assert "texts of 0 gap(s) and 0 report(s) older than 90 days" in capsys.readouterr().out


def test_an_unreachable_database_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql+asyncpg://spacebot:hunter2@127.0.0.1:{closed_port()}/spacebot"
    assert run(["stats", "--database", url]) == 1
    assert run(["db", "upgrade", "--database", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("spacebot: ") for line in err)
    assert "hunter2" not in "\n".join(err) and "***" in err[1]


def test_an_invalid_database_url_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["stats", "--database", "mysql://user:secret@127.0.0.1/x"]) == 2
    err = capsys.readouterr().err
    assert "unsupported database 'mysql'" in err and "secret" not in err


def test_since_reads_days_hours_weeks_and_dates() -> None:
    now = dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)
    assert parse_since("30d", now) == now - dt.timedelta(days=30)
    assert parse_since("12h", now) == now - dt.timedelta(hours=12)
    assert parse_since("2w", now) == now - dt.timedelta(weeks=2)
    assert parse_since("2026-01-31", now) == dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="30d"):
        parse_since("last month", now)
