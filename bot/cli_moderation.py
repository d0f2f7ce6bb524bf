"""``spacebot feedback|gaps|stats|forget|db``: the moderators' review queue at a terminal, and exports.

``add_commands(subparsers)`` registers the commands on ``spacebot``'s parser; each handler takes
``(args, settings)`` like the others and reads the database from ``SPACEBOT_DATABASE_URL`` (or
``--database``). ``--format json`` prints one JSON array or object on stdout; ``csv`` a header row
and one row per item; ``table`` (the default) text for a person.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.core.config import describe_settings_error

if TYPE_CHECKING:  # the handlers import the storage layer (SQLAlchemy, Alembic) when they run: --help stays fast
    from bot.storage import Storage, StorageSettings

FORMATS = ("table", "csv", "json")
_SINCE = re.compile(r"^(\d+)\s*([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``feedback list|resolve``, ``gaps``, ``stats``, ``forget`` and ``db upgrade|purge``."""
    feedback = subparsers.add_parser("feedback", help="list or resolve the feedback reports on answers")
    actions = feedback.add_subparsers(dest="feedback_action", metavar="ACTION", required=True)
    listing = _command(actions, "list", "reports, newest first", _feedback_list, formats=True)
    listing.add_argument("--status", choices=["open", "resolved", "dismissed", "all"], default="open")
    listing.add_argument("--helpful", action="store_true", help="include Helpful votes, not only reports")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many first")
    resolve = _command(actions, "resolve", "mark a report resolved (or dismissed)", _feedback_resolve)
    resolve.add_argument("id", type=int, help="the report's id (from `spacebot feedback list`)")
    resolve.add_argument("--dismiss", action="store_true", help="dismiss it: nothing to fix")
    resolve.add_argument("--note", help="the moderator's note")
    resolve.add_argument("--fixed-in", metavar="VERSION", help="the kb_version that has the fix")

    gaps = _command(subparsers, "gaps", "the questions the bot could not answer, grouped", _gaps, formats=True)
    gaps.add_argument("--since", type=parse_since, default="30d", help="30d, 12h, 2w or a date (default 30d)")
    gaps.add_argument("--limit", type=int, default=20, help="at most this many groups (default 20)")
    gaps.add_argument("--guild", type=int, default=None, help="only this server's questions")

    stats = _command(subparsers, "stats", "answered and declined questions, votes, top topics", _stats, formats=True)
    stats.add_argument("--since", type=parse_since, default="30d", help="30d, 12h, 2w or a date (default 30d)")
    stats.add_argument("--guild", type=int, default=None, help="only this server")

    forget = _command(subparsers, "forget", "delete every feedback report a Discord user made", _forget)
    forget.add_argument("user_id", type=int, help="the user's Discord id")

    database = subparsers.add_parser("db", help="the database: upgrade its schema, apply retention")
    db_actions = database.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    _command(db_actions, "upgrade", "upgrade the schema to the newest migration", _db_upgrade)
    purge = _command(db_actions, "purge", "delete question texts older than the retention period", _db_purge)
    purge.add_argument("--days", type=int, default=None, help="retention in days (default SPACEBOT_RETENTION_DAYS)")


def _command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str,
    handler: Callable[[argparse.Namespace, Any], int], *, formats: bool = False,
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--database", metavar="URL", help="database URL (default: SPACEBOT_DATABASE_URL)")
    if formats:
        parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.set_defaults(handler=handler)
    return parser


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``30d``, ``12h``, ``2w`` before now, or an ISO date (midnight UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    match = _SINCE.match(text.strip().lower())
    if match:
        return now - dt.timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 30d, 12h, 2w or a date like 2026-01-31, not {text!r}") from None
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _storage_settings(args: argparse.Namespace) -> StorageSettings:
    from bot.storage import StorageSettings

    overrides = {"database_url": args.database} if getattr(args, "database", None) else {}
    return StorageSettings(**overrides)


def _with_storage(args: argparse.Namespace, work: Callable[[Storage], Awaitable[int]]) -> int:
    """Run ``work`` on a storage at the newest schema; a database failure is one line on stderr, exit 1."""
    from bot.storage import Storage, StorageError

    async def run(settings: StorageSettings) -> int:
        async with Storage(settings) as storage:
            return await work(storage)

    try:
        settings = _storage_settings(args)
    except ValueError as exc:  # pydantic's ValidationError: a bad SPACEBOT_DATABASE_URL or --database
        print(f"spacebot: invalid database setting: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(settings))
    except StorageError as exc:
        print(f"spacebot: {exc}", file=sys.stderr)
        return 1


# -- feedback ---------------------------------------------------------------------------------------


def _feedback_list(args: argparse.Namespace, settings: object) -> int:
    from bot.storage import REPORT_KINDS, VOTE_KINDS, export

    status = None if args.status == "all" else args.status
    kinds = VOTE_KINDS if args.helpful else REPORT_KINDS

    async def work(storage: Storage) -> int:
        reports = await storage.list_feedback(status, args.limit, args.offset, kinds=kinds)
        export.print_reports(reports, args.format, sys.stdout)
        return 0

    return _with_storage(args, work)


def _feedback_resolve(args: argparse.Namespace, settings: object) -> int:
    if args.dismiss and args.fixed_in:
        print("spacebot: --fixed-in is for a resolved report, not a dismissed one", file=sys.stderr)
        return 2

    async def work(storage: Storage) -> int:
        status = "dismissed" if args.dismiss else "resolved"
        report = await storage.resolve_feedback(args.id, status, args.note, args.fixed_in)
        fixed = f" (fixed in {report.fixed_in})" if report.fixed_in else ""
        print(f"Report #{report.id} {report.status}{fixed}.")
        return 0

    return _with_storage(args, work)


# -- gaps, stats, forget ----------------------------------------------------------------------------


def _gaps(args: argparse.Namespace, settings: object) -> int:
    from bot.storage import export

    async def work(storage: Storage) -> int:
        groups = await storage.gap_groups(args.since, limit=args.limit, guild_id=args.guild)
        export.print_gaps(groups, args.format, sys.stdout)
        return 0

    return _with_storage(args, work)


def _stats(args: argparse.Namespace, settings: object) -> int:
    from bot.storage import export

    async def work(storage: Storage) -> int:
        export.print_stats(await storage.stats(args.since, guild_id=args.guild), args.format, sys.stdout)
        return 0

    return _with_storage(args, work)


def _forget(args: argparse.Namespace, settings: object) -> int:
    async def work(storage: Storage) -> int:
        deleted = await storage.forget_user(args.user_id)
        print(f"Deleted {deleted} feedback report(s) by user {args.user_id}.")
        return 0

    return _with_storage(args, work)


# -- db ---------------------------------------------------------------------------------------------


def _db_upgrade(args: argparse.Namespace, settings: object) -> int:
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from bot.storage.database import head_revision, safe_url, upgrade_url
    from bot.storage.errors import describe

    try:
        url = _storage_settings(args).database_url
    except ValueError as exc:
        print(f"spacebot: invalid database setting: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    try:
        before = asyncio.run(upgrade_url(url))
    except (SQLAlchemyError, OSError, TimeoutError, CommandError) as exc:  # unreachable, or a failed migration
        print(f"spacebot: could not upgrade {safe_url(url)}: {describe(exc)}", file=sys.stderr)
        return 1
    head = head_revision()
    change = "already at" if before == head else f"upgraded from {before or 'an empty database'} to"
    print(f"Database {safe_url(url)}: {change} revision {head}.")
    return 0


def _db_purge(args: argparse.Namespace, settings: object) -> int:
    async def work(storage: Storage) -> int:
        report = await storage.purge_older_than(args.days)
        days = args.days if args.days is not None else storage.settings.retention_days
        print(f"Deleted the texts of {report.gaps_purged} gap(s) and {report.reports_anonymised} report(s) "
              f"older than {days} days; counts are kept.")
        return 0

    return _with_storage(args, work)
