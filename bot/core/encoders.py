"""The encoder factory: the encoder the settings ask for, ONNX (exported on first use) or torch.

It sits above :mod:`bot.core.embedding` (protocol, torch encoder), :mod:`bot.core.onnx_runtime` and
:mod:`bot.core.onnx_export`, so none of those needs to import another's caller.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.embedding import Encoder, ResolvedModel, TorchEncoder, resolve_model
from bot.core.onnx_cache import find_export, keep_optimized, optimized_staging
from bot.core.onnx_export import OnnxMismatchError, ensure_export
from bot.core.onnx_runtime import OnnxEncoder
from bot.core.pooling import UnsupportedModelError

if TYPE_CHECKING:
    from bot.core.config import EngineSettings

log = logging.getLogger(__name__)


def load_encoder(settings: EngineSettings, *, cache_dir: Path | None = None) -> Encoder:
    """The encoder the settings ask for.

    When the ONNX path cannot give sentence-transformers' vectors (the export fails its check, or the
    model's pipeline has a step the runtime does not run), it falls back to torch with a warning.
    """
    model = resolve_model(settings.embedding_model)
    if settings.encoder == "torch":
        log.info("loading %s on torch", model.name)
        return TorchEncoder(model)
    cache = cache_dir or settings.index_dir / "onnx"
    try:
        return load_onnx_encoder(model, cache, quantize=settings.onnx_quantize)
    except (OnnxMismatchError, UnsupportedModelError) as exc:
        log.warning("%s; using sentence-transformers on torch instead (slower start and queries)", exc)
        return TorchEncoder(model)


def load_onnx_encoder(model: ResolvedModel, cache_dir: Path, *, quantize: bool) -> OnnxEncoder:
    """The cached ONNX export of ``model``, exported (and checked) first when missing or corrupt.

    The first start after an export optimizes the graph and keeps the result beside it; later starts
    load that, which skips onnxruntime's graph optimization.
    """
    found = find_export(model, cache_dir, quantize=quantize)
    if found is None:
        folder, meta, model_bytes = ensure_export(model, cache_dir, quantize=quantize)
        return OnnxEncoder.from_export(model, folder, meta, model_bytes)
    if found.optimized:
        return OnnxEncoder.from_export(model, found.folder, found.meta, found.graph, optimized=True)
    staging = optimized_staging(found.folder)
    try:
        encoder = OnnxEncoder.from_export(model, found.folder, found.meta, found.graph, save_optimized=staging)
    except Exception as exc:  # onnxruntime's own errors (Fail, NoSuchFile, ...) derive from Exception only
        log.info("cannot save the optimized ONNX graph in %s (%s); optimizing at each start", found.folder, exc)
        staging.unlink(missing_ok=True)
        return OnnxEncoder.from_export(model, found.folder, found.meta, found.graph)
    keep_optimized(found.folder, found.meta, staging)
    return encoder
