"""Storage fixtures: every test that takes ``storage`` or ``database_url`` runs on SQLite and on PostgreSQL.

PostgreSQL runs when ``SPACEBOT_TEST_DATABASE_URL`` names a server (``.ci/run`` starts one with
``tests/storage/pg_server.sh``). The session creates one database there and drops it at the end;
before each test every table in it is emptied (the schema stays: migrations are tested on databases
of their own, from ``throwaway_database``). Without the variable the PostgreSQL cases are skipped,
with that reason; with it they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from bot.storage import Storage
from tests.storage.support import FakeClock, storage_settings

PG_ENV = "SPACEBOT_TEST_DATABASE_URL"


def pg_server() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="session")
def pg_session_database() -> Iterator[str | None]:
    """One database on the test server for the whole session (None without a server)."""
    server = pg_server()
    if server is None:
        yield None
        return
    url = asyncio.run(create_database(server))
    try:
        yield url
    finally:
        asyncio.run(drop_database(url))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_session_database: str | None
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/data/spacebot.db"
        return
    if pg_session_database is None:
        pytest.skip(f"{PG_ENV} is not set (bash tests/storage/pg_server.sh start DIR prints one)")
    await _empty_tables(make_url(pg_session_database))
    yield pg_session_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database no migration has touched yet (slower on PostgreSQL: for the migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/new/spacebot.db"
        return
    async with own_pg_database() as url:
        yield url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A database of this test's own on the PostgreSQL test server (PostgreSQL-only features)."""
    async with own_pg_database() as url:
        yield url


@contextlib.asynccontextmanager
async def own_pg_database() -> AsyncIterator[str]:
    """A fresh database on the PostgreSQL test server; the test skips when no server is set."""
    server = pg_server()
    if server is None:
        pytest.skip(f"{PG_ENV} is not set (bash tests/storage/pg_server.sh start DIR prints one)")
    async with throwaway_database(server) as url:
        yield url


@contextlib.asynccontextmanager
async def throwaway_database(server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    url = await create_database(server_url)
    try:
        yield url
    finally:
        await drop_database(url)


async def create_database(server_url: str) -> str:
    server = make_url(server_url)
    name = f"spacebot_test_{uuid.uuid4().hex[:12]}"
    await _execute(server, f'CREATE DATABASE "{name}"')
    return server.set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    database = make_url(url)
    await _execute(database.set(database="postgres"), f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)')


async def _empty_tables(database: URL) -> None:
    connection = await _connect(database)
    try:
        tables = [row["tablename"] for row in await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )]
        if tables:
            await connection.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
    finally:
        await connection.close()


async def _execute(database: URL, statement: str) -> None:
    connection = await _connect(database)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _connect(database: URL) -> asyncpg.Connection:
    plain = database.set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(plain, timeout=10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC))


@pytest.fixture
async def storage(database_url: str, clock: FakeClock) -> AsyncIterator[Storage]:
    opened = await Storage.open(storage_settings(database_url), clock=clock)
    try:
        yield opened
    finally:
        await opened.close()
