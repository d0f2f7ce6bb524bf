"""Alembic's environment: migrations run on the connection the bot hands over, or from the command line.

The bot runs them itself (``Storage`` upgrades to head on start, ``spacebot db upgrade``); the
command line is for writing a new revision:
``alembic -c bot/storage/alembic.ini revision --autogenerate -m "what changed"``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bot.storage.config import StorageSettings
from bot.storage.database import create_engine
from bot.storage.schema import Base, UTCDateTime

target_metadata = Base.metadata


def render_item(kind: str, item: object, autogen_context: object) -> str | bool:
    """Write UTCDateTime as the plain DateTime it stores, so a revision never imports the current schema."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_on(connection: Connection) -> None:
    # Batch mode lets one migration ALTER tables on SQLite too (it recreates them); PostgreSQL alters in place.
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, render_item=render_item
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    engine = create_engine(StorageSettings().database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


handed_over = context.config.attributes.get("connection")
if handed_over is not None:
    run_on(handed_over)
elif context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `spacebot db upgrade`")
else:
    asyncio.run(run_from_settings())
