"""Connecting: the async engine for a database URL, SQLite's pragmas, and Alembic's upgrade to head."""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS = "bot.storage:migrations"  # a package resource: found the same in a checkout and in a wheel
SQLITE_BUSY_TIMEOUT_MS = 5000
UPGRADE_ATTEMPTS = 3
_UPGRADE_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def safe_url(url: str | URL) -> str:
    """The URL as it may be printed or logged: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """An async engine (no I/O yet); every SQLite connection uses WAL.

    Statement parameters (question texts, notes, the hash secret) stay out of logs and error messages:
    ``hide_parameters``, and aiosqlite's DEBUG log, which prints every parameter, is kept at INFO.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    aiosqlite_log = logging.getLogger("aiosqlite")
    if aiosqlite_log.level < logging.INFO:
        aiosqlite_log.setLevel(logging.INFO)
    engine = create_async_engine(parsed, hide_parameters=True)
    event.listen(engine.sync_engine, "connect", _sqlite_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def prepare_sqlite_folder(url: str | URL) -> None:
    """Create the folder of a SQLite file (the first use needs no set-up step); other URLs: nothing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL lets readers (the CLI, other processes) work while the bot writes; busy_timeout waits for a writer.

    Python's sqlite3 would run DDL outside any transaction (a migration half done by a process that
    died, or raced by another one); SQLAlchemy's documented recipe hands BEGIN to us instead.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE: take the write lock at BEGIN (waiting up to busy_timeout), so a transaction that reads and
    # then writes never fails on a snapshot another process made stale.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an ini file; with ``connection``, migrations run on it."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration in bot/storage/migrations/versions"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_lock() -> asyncio.Lock:
    """One upgrade at a time per event loop: Alembic's ``context`` is module state, shared by every engine."""
    return _UPGRADE_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())


async def upgrade(engine: AsyncEngine) -> str | None:
    """Upgrade the database to head; returns the revision it was at (None: empty).

    Two processes starting together may both try: the loser's transaction fails (or, on SQLite, finds
    its snapshot stale), and the retry finds the schema at head and does nothing.
    """
    for attempt in range(1, UPGRADE_ATTEMPTS + 1):
        try:
            async with _upgrade_lock(), engine.begin() as connection:
                return await connection.run_sync(upgrade_to_head)
        except SQLAlchemyError:
            if attempt == UPGRADE_ATTEMPTS:
                raise
            log.info("schema upgrade conflicted (attempt %d); retrying", attempt)
    raise AssertionError("unreachable")


async def upgrade_url(url: str) -> str | None:
    """``spacebot db upgrade``: upgrade the database at ``url`` to head; returns the revision it was at."""
    prepare_sqlite_folder(url)
    engine = create_engine(url)
    try:
        return await upgrade(engine)
    finally:
        await engine.dispose()


def upgrade_to_head(connection: Connection) -> str | None:
    """Run on a sync connection (``await conn.run_sync(upgrade_to_head)``); returns the revision before."""
    before = current_revision(connection)
    if before != head_revision():
        log.info("upgrading the database from %s to %s", before or "empty", head_revision())
        command.upgrade(alembic_config(connection), "head")
    return before
