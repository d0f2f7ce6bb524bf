"""Fixtures: a fake Discord on 127.0.0.1, the real engine on a small knowledge base, a running bot.

Every test here fails on an ERROR log record it did not expect, on an unhandled task exception,
and on any request to a route the fake Discord does not know.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord_harness import ErrorLog, Harness, make_settings, running_bot, serving
from fake_discord import MOD_ROLE_ID, FakeDiscord, FakeUser
from storage_harness import bot_with_storage

from bot.core.config import EngineSettings
from bot.core.embedding import Encoder
from bot.core.encoders import load_encoder
from bot.core.engine import Engine
from bot.discord_bot.config import DiscordSettings
from bot.storage import StorageSettings

REPO = Path(__file__).resolve().parents[2]
# A few real topic files: enough for answers with sources and history, small enough to index fast.
KNOWLEDGE_FILES = ("russia-iss.yaml", "iss-deorbit.yaml", "space-debris.yaml", "scope.md")


# -- failure detectors --------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    leftover = [f"{r.name}: {r.getMessage()}" for r in handler.records]
    assert not leftover, f"unexpected ERROR log records: {leftover}"


@pytest.fixture(autouse=True)
async def no_unhandled_task_exceptions(error_log: ErrorLog) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    problems: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: problems.append(str(context.get("message"))))
    try:
        yield
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not problems, f"unhandled exceptions in the event loop: {problems}"


# -- the engine ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def encoder(request: pytest.FixtureRequest) -> Encoder:
    """The real bundled all-MiniLM-L6-v2, loaded once per session (shared with tests/conftest.py's)."""
    try:
        encoder: Encoder = request.getfixturevalue("real_encoder")
    except pytest.FixtureLookupError:
        encoder = load_encoder(EngineSettings(_env_file=None, encoder="torch"))  # type: ignore[call-arg]
    gc.freeze()  # the model's objects live all session: keep the per-test gc.collect() fast
    return encoder


@pytest.fixture(scope="session")
def built_kb(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """A small knowledge base with its index built once; tests get a copy of both."""
    root = tmp_path_factory.mktemp("kb")
    (root / "knowledge").mkdir()
    for name in KNOWLEDGE_FILES:
        shutil.copy(REPO / "knowledge" / name, root / "knowledge" / name)
    engine = Engine.open(make_settings(root), encoder=encoder)
    engine.close()
    return root


@pytest.fixture
def kb_dir(tmp_path: Path, built_kb: Path) -> Path:
    """This test's own copy of the knowledge files and index (mutate freely)."""
    shutil.copytree(built_kb / "knowledge", tmp_path / "knowledge")
    shutil.copytree(built_kb / "index", tmp_path / "index")
    return tmp_path


@pytest.fixture
def settings(kb_dir: Path) -> DiscordSettings:
    return make_settings(kb_dir)


@pytest.fixture
async def engine(settings: DiscordSettings, encoder: Encoder) -> AsyncIterator[Engine]:
    engine = await asyncio.to_thread(Engine.open, settings, encoder)
    yield engine
    engine.close()


# -- the fake Discord ---------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def never_the_real_discord(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test forgets, the client can only ever reach 127.0.0.1 (port 9: nobody listens)."""
    monkeypatch.setattr(discord.http.Route, "BASE", "http://127.0.0.1:9/api/v10")
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL("ws://127.0.0.1:9/gateway"))


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    async with serving(fake, monkeypatch):
        yield fake


# -- users --------------------------------------------------------------------------------------
MANAGE_GUILD = 1 << 5


@pytest.fixture
def member() -> FakeUser:
    return FakeUser(700000000000000001, "astro_fan")


@pytest.fixture
def admin() -> FakeUser:
    base = FakeUser(700000000000000002, "server_admin")
    return FakeUser(base.id, base.name, permissions=base.permissions | MANAGE_GUILD)


@pytest.fixture
def curator() -> FakeUser:
    return FakeUser(700000000000000003, "kb_curator", roles=(MOD_ROLE_ID,))


@pytest.fixture
async def harness(fake_discord: FakeDiscord, settings: DiscordSettings, engine: Engine) -> AsyncIterator[Harness]:
    async with running_bot(fake_discord, settings, engine=engine) as harness:
        yield harness


@pytest.fixture
def cooldown_settings(kb_dir: Path) -> DiscordSettings:
    return make_settings(kb_dir, cooldown_rate=2, cooldown_per=60.0)


# -- a bot with a database ------------------------------------------------------------------------
@pytest.fixture
def storage_settings(tmp_path: Path) -> StorageSettings:
    """An SQLite database of this test's own."""
    url = f"sqlite+aiosqlite:///{tmp_path}/db/spacebot.db"
    return StorageSettings(_env_file=None, database_url=url)  # type: ignore[call-arg]


@pytest.fixture
async def db_harness(
    fake_discord: FakeDiscord, settings: DiscordSettings, engine: Engine, storage_settings: StorageSettings
) -> AsyncIterator[Harness]:
    async with bot_with_storage(fake_discord, settings, engine, storage_settings) as harness:
        yield harness
