"""The encoder modules: no import cycle, each importable alone, and no torch behind the runtime."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

CORE = REPO / "bot" / "core"
ENCODER_MODULES = (
    "bot.core.embedding", "bot.core.onnx_runtime", "bot.core.onnx_cache", "bot.core.onnx_export", "bot.core.encoders",
)
HEAVY = ("torch", "transformers", "sentence_transformers", "optimum")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every ``bot.*`` module ``path`` imports, at the top or inside functions (not under TYPE_CHECKING)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for block in ast.walk(tree) if _is_type_checking_block(block) for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # ``from bot.core import store``
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    files = sorted(CORE.glob("*.py"))
    known = {module_name(f) for f in files}
    return {module_name(f): imported_modules(f, known) - {module_name(f)} for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_reports_a_cycle_through_a_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_imports_inside_functions_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    """A lazy import inside a function is how ``load_encoder`` made the old embedding <-> onnx_encoder cycle."""
    module = tmp_path / "embedding.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.core.config import Settings\n"
        "def load():\n    from bot.core.onnx_encoder import OnnxEncoder\n",
        encoding="utf-8",
    )
    assert imported_modules(module, {"bot.core.onnx_encoder", "bot.core.config"}) == {"bot.core.onnx_encoder"}


def test_bot_core_has_no_import_cycle() -> None:
    graph = import_graph()
    assert set(ENCODER_MODULES) <= set(graph)
    assert cycles(graph) == []


def test_the_encoder_factory_sits_above_the_modules_it_ties_together() -> None:
    graph = import_graph()
    lower = {"bot.core.embedding", "bot.core.onnx_runtime", "bot.core.onnx_cache", "bot.core.onnx_export"}
    assert all("bot.core.encoders" not in graph[module] for module in lower)
    assert "bot.core.onnx_export" not in graph["bot.core.onnx_runtime"]


@pytest.mark.parametrize("module", ENCODER_MODULES)
def test_each_encoder_module_imports_alone_in_a_fresh_interpreter_without_torch(module: str) -> None:
    script = textwrap.dedent(
        f"""
        import importlib, sys
        importlib.import_module({module!r})
        print("HEAVY=" + ",".join(sorted(m for m in {HEAVY!r} if m in sys.modules)))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY=\n" in result.stdout, result.stdout
