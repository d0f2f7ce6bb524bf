"""The storage layer is engine side: importing it loads no discord (and nothing heavy such as torch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_storage_layer_and_its_cli_loads_no_discord_and_no_torch() -> None:
    code = (
        "import sys, bot.storage, bot.storage.migrations, bot.cli_moderation\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'discord', 'torch', 'faiss'})\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_cli_module_imports_no_database_code_until_a_command_runs() -> None:
    code = (
        "import sys, bot.cli_moderation\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'alembic'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
