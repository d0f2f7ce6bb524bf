"""The baselines the engine is measured against, each ranking passages by one signal.

- :class:`DenseBaseline` on torch: what one writes first (sentence-transformers ``encode`` + exact FAISS).
- :class:`DenseBaseline` on sentence-transformers' own ONNX backend, running the very int8 graph the
  engine runs: its gap to the torch baseline is what ONNX brings, its gap to the engine what the
  engine's own runtime and pipeline bring.
- :class:`Bm25Baseline`: ``bm25s`` over the same fields and tokens as the engine's lexical index.

Each gives a :class:`Ranking` (ids best first and the top score); declining below a threshold on
that score is the caller's business (:mod:`bot.bench.quality`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.knowledge import KnowledgeBase
from bot.core.models import Passage
from bot.core.retrieval import BM25_B, BM25_K1, STOPWORDS
from bot.core.text import tokenize

log = logging.getLogger(__name__)

TOP_K = 5
ST_ONNX_GRAPH = Path("onnx") / "model.onnx"  # where sentence-transformers' ONNX backend looks by default


@dataclass(frozen=True)
class Ranking:
    """A baseline's answer to one question: passage ids best first, and the score of the best one."""

    ids: tuple[str, ...]
    top_score: float


class DenseBaseline:
    """sentence-transformers ``encode`` (torch or its ONNX backend), exact FAISS search. No cache, no fusion."""

    def __init__(self, model: Any, knowledge: KnowledgeBase, passage_vectors: np.ndarray) -> None:
        """``model``: a loaded ``SentenceTransformer``; ``passage_vectors``: one row per passage, in order."""
        import faiss

        if len(passage_vectors) != len(knowledge.passages):
            raise ValueError(f"{len(passage_vectors)} vectors for {len(knowledge.passages)} passages")
        self.model = model
        self.ids = list(knowledge.passages)
        self.passage_vectors = np.ascontiguousarray(passage_vectors, dtype=np.float32)
        self._index = faiss.IndexFlatIP(self.passage_vectors.shape[1])
        self._index.add(self.passage_vectors)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def rank(self, question: str) -> Ranking:
        """One question alone: what the latency runs time."""
        return self.rank_many([question])[0]

    def rank_many(self, questions: Sequence[str]) -> list[Ranking]:
        """Questions encoded in batches and searched together, as the engine answers a question set."""
        if not questions:
            return []
        scores, rows = self._index.search(self.encode(questions), min(TOP_K, len(self.ids)))
        return [
            Ranking(tuple(self.ids[r] for r in found if r >= 0), float(best[0]))
            for found, best in zip(rows, scores, strict=True)
        ]


def load_torch_model(model_location: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_location, device="cpu")


def load_st_onnx_model(model_location: str, graph: Path, folder: Path) -> Any:
    """sentence-transformers' own ONNX backend on ``graph``, offline.

    ``SentenceTransformer(path, backend="onnx")`` loads ``<path>/onnx/model.onnx``. The bundled model
    folder has no export (and is read-only inside site-packages), so ``folder`` gets links to its files
    plus the graph the engine exported with sentence-transformers' own exporter.
    """
    from sentence_transformers import SentenceTransformer

    link_model_folder(Path(model_location), graph, folder)
    return SentenceTransformer(str(folder), backend="onnx", device="cpu")


def link_model_folder(model_dir: Path, graph: Path, folder: Path) -> None:
    """``folder``: symlinks to every entry of ``model_dir``, and ``onnx/model.onnx`` pointing at ``graph``."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in model_dir.iterdir():
        if entry.name != ST_ONNX_GRAPH.parts[0] and not (folder / entry.name).exists():
            os.symlink(entry.resolve(), folder / entry.name)
    (folder / ST_ONNX_GRAPH).parent.mkdir(exist_ok=True)
    target = folder / ST_ONNX_GRAPH
    if not target.exists():
        os.symlink(graph.resolve(), target)


def lexical_tokens(passage: Passage) -> list[str]:
    """The terms the engine's ``LexicalIndex`` indexes for a passage: the title twice, text, aliases, tags."""
    fields = [passage.title, passage.title, passage.text, *passage.aliases, *passage.tags]
    return query_tokens(" ".join(fields))


def query_tokens(text: str) -> list[str]:
    return [t for t in tokenize(text) if t not in STOPWORDS]


class Bm25Baseline:
    """Lexical retrieval alone: ``bm25s`` with the engine's k1 and b, fields, tokenizer and stop words.

    No synonym expansion, alias table, typo correction or fusion: those are the engine's.
    """

    def __init__(self, knowledge: KnowledgeBase) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each indexing step at DEBUG
        self._ids = list(knowledge.passages)
        self._retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        self._retriever.index([lexical_tokens(p) for p in knowledge.passages.values()], show_progress=False)
        self._vocabulary: dict[str, int] = self._retriever.vocab_dict

    def rank_many(self, questions: Sequence[str]) -> list[Ranking]:
        return [self.rank(question) for question in questions]

    def rank(self, question: str) -> Ranking:
        tokens = [t for t in query_tokens(question) if t in self._vocabulary]
        if not tokens:  # nothing the knowledge base uses: nothing to rank
            return Ranking((), 0.0)
        scores = np.asarray(self._retriever.get_scores(tokens))
        order = np.argsort(-scores, kind="stable")[:TOP_K]
        ranked = [int(row) for row in order if scores[row] > 0]
        return Ranking(tuple(self._ids[r] for r in ranked), float(scores[ranked[0]]) if ranked else 0.0)
