"""The schema comes from Alembic's migrations, the same on both backends, and ships inside the package."""

from __future__ import annotations

import asyncio
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bot.storage import Storage, StorageUnavailableError
from bot.storage.database import alembic_config, create_engine, current_revision, head_revision, upgrade_url
from bot.storage.schema import Base
from tests.storage.support import storage_settings, vote

REPO = Path(__file__).resolve().parents[2]
STORAGE = REPO / "bot" / "storage"
TABLES = {"feedback", "gaps", "question_counts", "guild_settings", "settings", "heartbeats", "published_knowledge",
          "alembic_version"}


def _schema_differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_opening_an_empty_database_migrates_it_to_the_newest_revision(empty_database_url: str) -> None:
    async with Storage(storage_settings(empty_database_url)) as storage, storage._engine.connect() as connection:
        assert await connection.run_sync(current_revision) == head_revision()
        assert await connection.run_sync(_tables) == TABLES


async def test_the_migrations_build_exactly_the_models_schema(empty_database_url: str) -> None:
    await upgrade_url(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_schema_differences) == []
    finally:
        await engine.dispose()


async def test_downgrading_to_nothing_and_upgrading_again_works(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)

    def downgrade(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "base")

    try:
        assert await upgrade_url(empty_database_url) is None
        async with engine.begin() as connection:
            await connection.run_sync(downgrade)
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) <= {"alembic_version"}
        assert await upgrade_url(empty_database_url) is None  # from base again
        assert await upgrade_url(empty_database_url) == head_revision()  # and then nothing to do
    finally:
        await engine.dispose()


async def test_reopening_keeps_the_data_and_migrates_nothing(empty_database_url: str) -> None:
    async with Storage(storage_settings(empty_database_url)) as first:
        await first.record_feedback(vote())
    assert await upgrade_url(empty_database_url) == head_revision()
    async with Storage(storage_settings(empty_database_url)) as second:
        assert await second.count_feedback() == 1


async def test_processes_starting_together_on_an_empty_database_all_come_up(empty_database_url: str) -> None:
    storages = [Storage(storage_settings(empty_database_url)) for _ in range(3)]
    try:
        await asyncio.gather(*(s.ensure_ready() for s in storages))
        hashes = {await s.reporter_hash(42) for s in storages}
        assert len(hashes) == 1  # one secret was generated, and every process uses it
    finally:
        await asyncio.gather(*(s.close() for s in storages))


async def test_sqlite_creates_its_folder_on_first_use_and_runs_in_wal_mode(tmp_path: Path) -> None:
    database = tmp_path / "not" / "yet" / "there" / "spacebot.db"
    storage = Storage(storage_settings(f"sqlite+aiosqlite:///{database}"))
    async with storage, storage._engine.connect() as connection:
        mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
    assert database.is_file() and mode == "wal"


def test_a_postgres_scheme_without_a_driver_gets_asyncpg() -> None:
    url = storage_settings("postgresql://bot:pw@127.0.0.1:5432/spacebot").database_url
    assert url == "postgresql+asyncpg://bot:pw@127.0.0.1:5432/spacebot"
    with pytest.raises(ValueError, match="asyncpg"):
        storage_settings("postgresql+psycopg2://127.0.0.1/spacebot")


def test_every_migration_file_is_in_the_built_package() -> None:
    """Wheels carry packages' .py files and the package-data globs: the migrations must be covered by both."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    globs = config.get("package-data", {}).get("bot.storage", [])
    files = [p for p in (STORAGE / "migrations").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files
    for path in files:
        if path.suffix == ".py":
            assert (path.parent / "__init__.py").is_file(), f"{path.parent} is not a package"
        else:
            relative = path.relative_to(STORAGE).as_posix()
            assert any(fnmatch(relative, pattern) for pattern in globs), f"{relative} not in package-data"
    assert any(fnmatch("alembic.ini", pattern) for pattern in globs)


CHILD = """
import asyncio, sys, time
from pathlib import Path
from bot.storage import Storage, StorageSettings

url, barrier, index, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
(barrier / f"ready-{index}").touch()
deadline = time.monotonic() + 60  # start together: the race is the point
while len(list(barrier.glob("ready-*"))) < count and time.monotonic() < deadline:
    time.sleep(0.005)

async def main():
    settings = StorageSettings(_env_file=None, database_url=url, hash_secret=None)
    storage = await Storage.open(settings)
    print(await storage.reporter_hash(42))
    await storage.close()

asyncio.run(main())
"""


async def test_separate_processes_starting_together_migrate_once_and_share_one_secret(
    empty_database_url: str, tmp_path: Path
) -> None:
    count = 3
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, empty_database_url, str(tmp_path), str(index), str(count),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for index in range(count)
    ]
    async with asyncio.timeout(180):
        results = [await process.communicate() for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr.decode()
    hashes = {stdout.decode().strip() for stdout, _ in results}
    assert len(hashes) == 1 and len(next(iter(hashes))) == 64


async def test_a_database_from_a_newer_version_of_the_bot_is_refused_with_its_revision(
    empty_database_url: str,
) -> None:
    async with Storage(storage_settings(empty_database_url)) as storage, storage._engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    with pytest.raises(StorageUnavailableError, match="from_the_future"):
        await Storage.open(storage_settings(empty_database_url))
