"""Everything measured side by side, opened once over the same passages in the bench's temporary folder."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.bench.baselines import Bm25Baseline, DenseBaseline, load_st_onnx_model, load_torch_model
from bot.bench.latency import CountingEncoder
from bot.core.config import EngineSettings
from bot.core.knowledge import KnowledgeBase

if TYPE_CHECKING:
    from bot.core.engine import Engine

log = logging.getLogger(__name__)


@dataclass
class Systems:
    onnx_settings: EngineSettings
    onnx: Engine  # on the ONNX encoder (wrapped in a call counter), answer cache off
    counter: CountingEncoder
    cached: Engine  # the same engine with the answer cache on
    torch: Engine  # on TorchEncoder, answer cache off
    naive: DenseBaseline  # sentence-transformers on torch + exact FAISS
    st_onnx: DenseBaseline | None  # sentence-transformers' ONNX backend on the engine's graph + exact FAISS
    st_onnx_problem: str | None  # why st_onnx is None
    bm25: Bm25Baseline
    model_location: str
    st_onnx_folder: Path
    onnx_kind: str  # "onnx-int8" or "onnx-fp32"

    def close(self) -> None:
        for engine in (self.onnx, self.cached, self.torch):
            engine.close()


def open_systems(settings: EngineSettings, root: Path) -> Systems:
    from bot.core.embedding import TorchEncoder, resolve_model
    from bot.core.engine import Engine
    from bot.core.onnx_export import ensure_export
    from bot.core.onnx_runtime import MODEL_FILE, OnnxEncoder

    model = resolve_model(settings.embedding_model)
    export_cache = settings.index_dir / "onnx"
    folder, meta, graph_bytes = ensure_export(model, export_cache, quantize=settings.onnx_quantize)
    counter = CountingEncoder(OnnxEncoder.from_export(model, folder, meta, graph_bytes))
    onnx_index = root / "index-onnx"
    onnx_index.mkdir()
    os.symlink(export_cache.resolve(), onnx_index / "onnx")  # the cold-start child reuses the export
    onnx_engine = Engine.open(_bench_settings(settings, onnx_index, "onnx", cache_size=0), counter)
    cached = Engine.open(_bench_settings(settings, onnx_index, "onnx", cache_size=512), counter.inner)
    torch_engine = Engine.open(_bench_settings(settings, root / "index-torch", "torch", cache_size=0),
                               TorchEncoder(model))
    knowledge = torch_engine.knowledge
    stored = torch_engine.snapshot.stored
    if list(stored.ids) != list(knowledge.passages):
        raise RuntimeError("the torch index rows are not in knowledge-base order")
    # the naive baseline encodes passages exactly as the torch engine did: reuse those vectors
    naive = DenseBaseline(load_torch_model(model.location), knowledge, stored.vectors.vectors)
    st_folder = root / "st-onnx-model"
    st_onnx, problem = _open_st_onnx(model.location, folder / MODEL_FILE, st_folder, knowledge)
    return Systems(
        onnx_settings=onnx_engine.settings, onnx=onnx_engine, counter=counter, cached=cached, torch=torch_engine,
        naive=naive, st_onnx=st_onnx, st_onnx_problem=problem, bm25=Bm25Baseline(knowledge),
        model_location=model.location, st_onnx_folder=st_folder, onnx_kind=counter.kind,
    )


def _open_st_onnx(
    model_location: str, graph: Path, folder: Path, knowledge: KnowledgeBase
) -> tuple[DenseBaseline | None, str | None]:
    """The ST ONNX baseline, encoding the passages itself; or None and the reason it could not load."""
    try:
        model = load_st_onnx_model(model_location, graph, folder)
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        log.warning("sentence-transformers' ONNX backend did not load: %s", reason)
        print(f"  sentence-transformers' ONNX backend did not load: {reason}", flush=True)
        return None, reason
    texts = [p.embedded_text for p in knowledge.passages.values()]
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    return DenseBaseline(model, knowledge, np.asarray(vectors, dtype=np.float32)), None


def _bench_settings(settings: EngineSettings, index_dir: Path, encoder: str, *, cache_size: int) -> EngineSettings:
    return settings.model_copy(update={"index_dir": index_dir, "encoder": encoder, "cache_size": cache_size})
