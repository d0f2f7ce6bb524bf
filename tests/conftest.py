"""Shared fixtures: a fake encoder for fast unit tests, the real bundled model for integration tests.

Nothing here writes to the repository: every index lives under a pytest temporary directory, and
settings are built explicitly (no ``.env`` file is read).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.config import DEFAULT_MODEL, EngineSettings
from bot.core.embedding import Encoder, TorchEncoder, resolve_model
from bot.core.engine import Engine
from tests.support.fake_encoder import FakeEncoder
from tests.support.kb import write_mini_kb

REPO = Path(__file__).resolve().parents[1]

SHIPPED_KNOWLEDGE = REPO / "knowledge"
QUESTIONS = REPO / "questions"
# The fake encoder's hashed vectors give unrelated texts cosines near zero and related ones well above,
# so tests with it answer by the plain cosine rule (>= 0.3), not by the judge fitted for the real model.
FAKE_JUDGE = REPO / "tests" / "support" / "fake_judge.json"

SettingsFactory = Callable[..., EngineSettings]


def make_settings(base: Path, **overrides: Any) -> EngineSettings:
    """EngineSettings whose folders all live under ``base``; ``overrides`` win. No ``.env`` is read."""
    values: dict[str, Any] = {
        "knowledge_dir": base / "knowledge",
        "index_dir": base / "index",
        "encoder": "torch",
        "cache_size": 512,
        "batch_wait_ms": 2.0,
        "judge_model": FAKE_JUDGE,
    }
    values.update(overrides)
    return EngineSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings_for() -> SettingsFactory:
    """``settings_for(tmp_path, top_k=3, ...)``: settings rooted in a temporary folder."""
    return make_settings


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def mini_kb_dir(tmp_path: Path) -> Path:
    """A fresh copy of the valid mini knowledge base in ``tmp_path/knowledge``."""
    return write_mini_kb(tmp_path / "knowledge")


@pytest.fixture
def mini_engine(mini_kb_dir: Path, fake_encoder: FakeEncoder, tmp_path: Path) -> Iterator[Engine]:
    """An engine over the mini knowledge base with the fake encoder, index in ``tmp_path/index``."""
    settings = make_settings(tmp_path, knowledge_dir=mini_kb_dir)
    engine = Engine.open(settings, fake_encoder)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def real_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2 on torch, loaded once per test session."""
    return TorchEncoder(resolve_model(DEFAULT_MODEL))


def _torch_snapshots(*roots: Path) -> list[Path]:
    """Saved snapshots built by the bundled model on torch, newest first within each root."""
    found = []
    for root in roots:
        folders = sorted(root.glob("snap-*"), key=lambda p: p.stat().st_mtime, reverse=True) if root.is_dir() else []
        for folder in folders:
            try:
                manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            built_with = (manifest.get("model"), manifest.get("encoder")) if isinstance(manifest, dict) else None
            if built_with == (DEFAULT_MODEL, "torch"):
                found.append(folder)
    return found


def _seed_cache(config: pytest.Config) -> Path | None:
    cache = getattr(config, "cache", None)
    return cache.mkdir("spacebot-shipped-index") if cache is not None else None


@pytest.fixture(scope="session")
def shipped_index_dir(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """A session index folder for the shipped knowledge, seeded from an earlier torch-built snapshot.

    Seeds come from pytest's cache (the snapshot the previous session built) or the repository's
    index/, read only. Seeding just saves embedding time: the build is incremental, so any passage
    whose text differs from the seed is embedded afresh, and an unusable seed is detected and rebuilt.
    """
    index_dir = tmp_path_factory.mktemp("shipped") / "index"
    index_dir.mkdir()
    cache = _seed_cache(pytestconfig)
    for seed in _torch_snapshots(*(root for root in (cache, REPO / "index") if root is not None)):
        try:
            shutil.copytree(seed, index_dir / seed.name)
        except (OSError, shutil.Error):
            shutil.rmtree(index_dir / seed.name, ignore_errors=True)
            continue
        (index_dir / "CURRENT").write_text(seed.name + "\n", encoding="utf-8")
        break
    return index_dir


def _remember_snapshot(pytestconfig: pytest.Config, folder: Path) -> None:
    """Keep the session's snapshot in pytest's cache so the next session embeds only what changed."""
    cache = _seed_cache(pytestconfig)
    if cache is None or (cache / folder.name).is_dir():
        return
    staging = cache / f".tmp-{folder.name}"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder, staging)
        staging.rename(cache / folder.name)
        for stale in cache.glob("snap-*"):
            if stale.name != folder.name:
                shutil.rmtree(stale, ignore_errors=True)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def shipped_settings(shipped_index_dir: Path) -> EngineSettings:
    return make_settings(shipped_index_dir.parent, knowledge_dir=SHIPPED_KNOWLEDGE, index_dir=shipped_index_dir,
                         judge_model=None)


@pytest.fixture(scope="session")
def shipped_engine(
    shipped_settings: EngineSettings, real_encoder: Encoder, pytestconfig: pytest.Config
) -> Iterator[Engine]:
    """The real engine over the shipped knowledge with the real model (session scoped)."""
    engine = Engine.open(shipped_settings, real_encoder)
    _remember_snapshot(pytestconfig, engine.snapshot.stored.folder)
    yield engine
    engine.close()
