"""The settings split: the engine's own, the Discord shell's on top, and their documentation."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from bot.core.config import EngineSettings
from bot.discord_bot.config import DiscordSettings
from bot.storage.config import StorageSettings

REPO = Path(__file__).resolve().parents[2]
DISCORD_ONLY = {
    "discord_token", "dev_guild_id", "mod_role_ids", "shard_count", "shard_ids",
    "cooldown_rate", "cooldown_per", "max_question_length", "watch_interval", "message_content",
}


def _env_name(field: str) -> str:
    return "DISCORD_TOKEN" if field == "discord_token" else f"SPACEBOT_{field.upper()}"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SPACEBOT_") or name == "DISCORD_TOKEN":
            monkeypatch.delenv(name)


def test_engine_settings_hold_no_discord_setting_and_discord_settings_extend_them() -> None:
    assert not DISCORD_ONLY & set(EngineSettings.model_fields)
    assert set(DiscordSettings.model_fields) == set(EngineSettings.model_fields) | DISCORD_ONLY
    assert issubclass(DiscordSettings, EngineSettings)


def test_env_example_copied_to_dot_env_gives_the_defaults(tmp_path: Path, clean_env: None) -> None:
    shutil.copy(REPO / ".env.example", tmp_path / ".env")

    from_file = DiscordSettings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]

    assert from_file == DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    assert from_file.dev_guild_id is None and from_file.shard_count is None and from_file.mod_role_ids == []


def test_id_lists_accept_commas_and_spaces(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    monkeypatch.setenv("SPACEBOT_MOD_ROLE_IDS", "11, 22 33")
    monkeypatch.setenv("DISCORD_TOKEN", "abc")

    settings = DiscordSettings(_env_file=None)  # type: ignore[call-arg]

    assert settings.mod_role_ids == [11, 22, 33]
    assert settings.discord_token is not None and settings.discord_token.get_secret_value() == "abc"


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_of_the_shells_and_the_storage_is_documented_and_nothing_else(document: str) -> None:
    text = (REPO / document).read_text(encoding="utf-8")
    if document == "README.md":
        documented = set(re.findall(r"^\| `((?:SPACEBOT_|DISCORD_)[A-Z_]+)` \|", text, flags=re.MULTILINE))
    else:
        documented = set(re.findall(r"^((?:SPACEBOT_|DISCORD_)[A-Z_]+)=", text, flags=re.MULTILINE))

    real = {*DiscordSettings.model_fields, *StorageSettings.model_fields}
    assert documented == {_env_name(field) for field in real}
