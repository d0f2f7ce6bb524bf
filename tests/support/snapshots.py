"""Index snapshots for the store tests: a mini knowledge base built into ``tmp_path/index``, and damage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core.knowledge import KnowledgeBase, load_knowledge
from bot.core.models import BuildReport
from bot.core.store import StoredIndex, open_or_build
from tests.support.fake_encoder import FakeEncoder
from tests.support.kb import mini_documents, write_documents


def knowledge_in(directory: Path) -> KnowledgeBase:
    """The knowledge base in ``directory``, which must validate."""
    result = load_knowledge(directory)
    assert result.knowledge is not None, [str(e) for e in result.errors]
    return result.knowledge


def build_index(
    tmp_path: Path, encoder: FakeEncoder, documents: dict[str, dict[str, Any]] | None = None
) -> tuple[StoredIndex, BuildReport]:
    """Write ``documents`` (the mini knowledge base by default) to ``tmp_path/knowledge`` and open the store."""
    knowledge = knowledge_in(write_documents(tmp_path / "knowledge", documents or mini_documents()))
    return open_or_build(knowledge, encoder, tmp_path / "index")


def corrupt_faiss(folder: Path) -> None:
    """Flip one byte in the middle of the snapshot's FAISS file (its hash no longer matches)."""
    path = folder / "index.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
