"""The fast query encoder at run time: an exported ONNX graph run with onnxruntime + ``tokenizers``.

This module imports numpy, onnxruntime and ``tokenizers`` only (the last two when an encoder is
created): never torch, transformers or sentence-transformers. The export that produces the graph lives
in :mod:`bot.core.onnx_export`; :func:`bot.core.encoders.load_encoder` ties the two together.

The graph is the model's Transformer module only: pooling and normalization run here, as the model's
own sentence-transformers config describes them (:func:`read_pooling`, recorded in ``export.json``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.embedding import ResolvedModel, normalize_rows, progress_wanted
from bot.core.errors import EncoderUnavailableError

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 256
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_META = "export.json"
# Measured on the 2-core EPYC (int8): one short query 0.7 ms on 1 thread, 1.0 ms on 2; a batch of 32
# 85 ms on 1 thread, 49 ms on 2. Batches (builds, busy micro-batches) dominate the cost, so use every core.
MAX_INTRA_OP_THREADS = 4

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")
# sentence-transformers' older config format: one boolean per mode.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}


class UnsupportedModelError(EncoderUnavailableError):
    """The model's sentence-transformers pipeline has a step the ONNX runtime does not reproduce."""


# ---------------------------------------------------------------------------------------------
# Pooling, as the model's own config says


@dataclass(frozen=True)
class Pooling:
    """How token vectors become one sentence vector: ``mode`` over real tokens, then maybe L2-normalize."""

    mode: str = "mean"
    normalize: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "normalize": self.normalize}

    @classmethod
    def from_dict(cls, value: object) -> Pooling:
        if not isinstance(value, dict) or value.get("mode") not in POOLING_MODES:
            raise UnsupportedModelError(f"export metadata has no usable pooling: {value!r}")
        return cls(mode=str(value["mode"]), normalize=bool(value.get("normalize", True)))


def read_pooling(model_dir: Path) -> Pooling:
    """The pooling mode from the Pooling module's config, and whether modules.json ends in Normalize."""
    modules = _read_json_file(model_dir / "modules.json")
    if not isinstance(modules, list):
        raise UnsupportedModelError(f"{model_dir / 'modules.json'} is missing or not a list of modules")
    types = {str(m.get("type", "")).rsplit(".", 1)[-1]: m for m in modules if isinstance(m, dict)}
    unsupported = sorted(set(types) - _SUPPORTED_MODULES)
    if unsupported or "Pooling" not in types:
        found = ", ".join(unsupported) or "no Pooling module"
        raise UnsupportedModelError(f"the ONNX runtime runs Transformer, Pooling, Normalize; {found} in {model_dir}")
    config = _read_json_file(model_dir / str(types["Pooling"].get("path", "")) / "config.json")
    if not isinstance(config, dict):
        raise UnsupportedModelError(f"the Pooling module's config.json in {model_dir} is missing or unreadable")
    return Pooling(mode=_pooling_mode(config), normalize="Normalize" in types)


def _pooling_mode(config: dict[str, Any]) -> str:
    """One mode from either config format; sentence-transformers defaults to mean when none is set."""
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key)] or ["mean"]
    if isinstance(modes, str):
        modes = [modes]
    if len(modes) != 1 or modes[0] not in POOLING_MODES:
        raise UnsupportedModelError(f"pooling {modes!r} is not supported (one of {', '.join(POOLING_MODES)})")
    return str(modes[0])


def pool(hidden: np.ndarray, attention: np.ndarray, mode: str) -> np.ndarray:
    """One vector per row of token vectors, counting only real tokens (padding is on the right)."""
    hidden = hidden.astype(np.float32, copy=False)
    mask = attention[:, :, None].astype(np.float32)
    if mode == "cls":
        return hidden[:, 0, :].copy()
    if mode == "max":
        return np.where(mask > 0, hidden, -np.inf).max(axis=1)
    summed = (hidden * mask).sum(axis=1)
    counts = np.clip(mask.sum(axis=1), 1e-9, None)
    return summed / (counts if mode == "mean" else np.sqrt(counts))


# ---------------------------------------------------------------------------------------------
# The encoder


class OnnxEncoder:
    """Sentence vectors from an ONNX graph: tokenize, run, pool as the model says, L2-normalize."""

    def __init__(
        self, model: ResolvedModel, model_bytes: bytes, tokenizer_file: Path, *,
        quantized: bool, dimension: int, pooling: Pooling, max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._model_info = model
        self._kind = "onnx-int8" if quantized else "onnx-fp32"
        self._dimension = dimension
        self._pooling = pooling
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()  # padding is done per batch, to the longest text in it
        self._tokenizer.enable_truncation(max_length)
        self._session = ort.InferenceSession(model_bytes, _session_options(ort), providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self._session.get_inputs()}

    @classmethod
    def from_export(cls, model: ResolvedModel, folder: Path, meta: dict[str, Any], model_bytes: bytes) -> OnnxEncoder:
        """The encoder for an export folder whose metadata and graph bytes were already read and checked."""
        return cls(
            model, model_bytes, folder / TOKENIZER_FILE, quantized=meta.get("quantization") is not None,
            dimension=int(meta["dimension"]), pooling=Pooling.from_dict(meta.get("pooling")),
            max_length=int(meta["max_length"]),
        )

    @property
    def model_name(self) -> str:
        return self._model_info.name

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def pooling(self) -> Pooling:
        return self._pooling

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order given.

        Always unit length (the index compares by inner product), whether or not the model's own
        pipeline ends in Normalize; for a model that does, this is exactly its output.
        """
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")  # similar lengths share a batch: little padding
        output = np.empty((len(texts), self._dimension), dtype=np.float32)
        batch_size = max(1, batch_size)
        starts = range(0, len(order), batch_size)
        for start in _progress(starts, enabled=progress_wanted(progress)):
            rows = order[start:start + batch_size]
            output[rows] = self._encode_batch([encodings[i] for i in rows])
        return output

    def _encode_batch(self, encodings: Sequence[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        input_ids = np.zeros((len(encodings), width), dtype=np.int64)
        attention = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            input_ids[row, :len(encoding.ids)] = encoding.ids
            attention[row, :len(encoding.ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self._session.run(None, feeds)[0]
        return normalize_rows(pool(hidden, attention, self._pooling.mode))


def intra_op_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_INTRA_OP_THREADS))


def _session_options(ort: Any) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Pool threads spin briefly between runs: one short question encodes in 1.9 ms instead of 2.8 ms
    # (2 threads, 200 questions); the bench's event-loop lag figure watches what that costs the bot.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return options


def _progress(items: range, *, enabled: bool) -> Iterator[int]:
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=len(items), desc="encoding", unit="batch")


def _read_json_file(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
