"""Output for the moderation commands: JSON, CSV (lists space-separated) and aligned text tables."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import Any, TextIO

from bot.storage.records import FeedbackReport, GapGroup, Stats

QUESTION_WIDTH = 70
NOTE_WIDTH = 40


def print_reports(reports: Sequence[FeedbackReport], fmt: str, out: TextIO) -> None:
    if fmt != "table":
        print_records([r.to_dict() for r in reports], fmt, out)
        return
    if not reports:
        print("No reports.", file=out)
        return
    rows = [[str(r.id), f"{r.created_at:%Y-%m-%d %H:%M}", r.vote, r.status, r.lead_passage_id or "-",
             short(r.question or "(deleted after retention)"), short(r.note or "", NOTE_WIDTH)] for r in reports]
    print_table(["id", "created (UTC)", "vote", "status", "lead passage", "question", "note"], rows, out)


def print_gaps(groups: Sequence[GapGroup], fmt: str, out: TextIO) -> None:
    if fmt != "table":
        print_records([g.to_dict() for g in groups], fmt, out)
        return
    if not groups:
        print("No unanswered questions in this period.", file=out)
        return
    rows = [[str(g.count), f"{g.first_seen:%Y-%m-%d}", f"{g.last_seen:%Y-%m-%d}", short(g.question),
             ", ".join(g.topics) or "-"] for g in groups]
    print_table(["asked", "first seen", "last seen", "question (most typical wording)", "nearest topics"], rows, out)


def print_stats(stats: Stats, fmt: str, out: TextIO) -> None:
    if fmt == "json":
        print(json.dumps(stats.to_dict(), ensure_ascii=False, indent=2), file=out)
        return
    rows = stats_rows(stats)
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["section", "name", "value"])
        writer.writerows(rows)
        return
    print(f"Since {stats.since:%Y-%m-%d %H:%M} UTC", file=out)
    print_table(["section", "name", "value"], rows, out)


def print_records(records: list[dict[str, Any]], fmt: str, out: TextIO) -> None:
    """``json``: one array; ``csv``: a header row (the first record's keys) and a row per record."""
    if fmt == "json":
        print(json.dumps(records, ensure_ascii=False, indent=2), file=out)
        return
    if not records:
        return
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: csv_value(value) for key, value in record.items()} for record in records)


def csv_value(value: Any) -> Any:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    if isinstance(value, dict):
        return " ".join(f"{key}={item}" for key, item in value.items())
    return "" if value is None else value


def print_table(headers: list[str], rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    for line in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip(), file=out)


def short(text: str, width: int = QUESTION_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def stats_rows(stats: Stats) -> list[list[str]]:
    """The figures as (section, name, value) rows, for the table and CSV forms of ``spacebot stats``."""
    rate = "-" if stats.helpful_rate is None else f"{stats.helpful_rate:.0%}"
    rows = [["questions", "total", str(stats.questions)], ["questions", "answered", str(stats.answered)]]
    rows += [["declined", reason, str(n)] for reason, n in stats.declined.items()]
    rows += [["votes", kind, str(n)] for kind, n in stats.votes.items()]
    rows += [["votes", "helpful rate", rate], ["reports", "open", str(stats.open_reports)],
             ["gaps", "recorded", str(stats.gaps)]]
    rows += [["top topics", topic, str(n)] for topic, n in stats.top_topics]
    rows += [["top reported passages", passage, str(n)] for passage, n in stats.top_reported_passages]
    return rows
