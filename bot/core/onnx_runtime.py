"""The fast query encoder at run time: an exported ONNX graph run with onnxruntime + ``tokenizers``.

This module imports numpy, onnxruntime and ``tokenizers`` only (the last two when an encoder is
created): never torch, transformers or sentence-transformers. The export that produces the graph lives
in :mod:`bot.core.onnx_export`; :func:`bot.core.encoders.load_encoder` ties the two together.

The graph is the model's Transformer module only: pooling and normalization run here, as the model's
own sentence-transformers config describes them (:func:`read_pooling`, recorded in ``export.json``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bot.core.embedding import ResolvedModel, normalize_rows, progress_wanted
from bot.core.errors import EncoderUnavailableError

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 256
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_META = "export.json"
# Measured on the 2-core EPYC (int8): one short query 0.7 ms on 1 thread, 1.0 ms on 2; a batch of 32
# 85 ms on 1 thread, 49 ms on 2. Batches (builds, busy micro-batches) dominate the cost, so use every core.
MAX_INTRA_OP_THREADS = 4
# Up to this many texts run on one thread (see OnnxEncoder). 200 tuning questions asked one at a time, int8,
# 2-core EPYC shared with other jobs: p50 2.5-6.7 ms on one thread against 7.7-9.5 ms on two.
SINGLE_THREAD_MAX_TEXTS = 4

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
    if mode == "cls":
        return hidden[:, 0, :].copy()
    if attention.all():  # no padding (one text, or equal lengths): the same sums without the mask's steps
        if mode == "max":
            return hidden.max(axis=1)
        counts = np.float32(hidden.shape[1])
        return hidden.sum(axis=1) / (counts if mode == "mean" else np.sqrt(counts))
    mask = attention[:, :, None].astype(np.float32)
    if mode == "max":
        return np.where(mask > 0, hidden, -np.inf).max(axis=1)
    summed = (hidden * mask).sum(axis=1)
    counts = np.clip(mask.sum(axis=1), 1e-9, None)
    return summed / (counts if mode == "mean" else np.sqrt(counts))


# ---------------------------------------------------------------------------------------------
# The encoder


class OnnxEncoder:
    """Sentence vectors from an ONNX graph: tokenize, run, pool as the model says, L2-normalize.

    A few texts (one question, a small micro-batch) run on a session with one intra-op thread: waking a
    thread pool costs more than it saves on a short input, and far more when other processes busy the
    cores. Bigger batches (index builds, busy micro-batches) run on a second session that uses every
    core, created on first need, so a process that only answers questions never builds its pool.
    """

    def __init__(
        self, model: ResolvedModel, graph: bytes | Path, tokenizer_file: Path, *,
        quantized: bool, dimension: int, pooling: Pooling, max_length: int = DEFAULT_MAX_LENGTH,
        optimized: bool = False, save_optimized: Path | None = None, graph_file: Path | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        self._model_info = model
        self._kind = "onnx-int8" if quantized else "onnx-fp32"
        self._dimension = dimension
        self._pooling = pooling
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()  # padding is done per batch, to the longest text in it
        self._tokenizer.enable_truncation(max_length)
        self._graph = graph
        self._optimized = optimized
        self._single = self._session(1, save_optimized)
        if graph_file is not None:
            self._graph = graph_file  # the bytes are not kept: a second session reads the file
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._runners: ThreadPoolExecutor | None = None
        self._input_names = {i.name for i in self._single.get_inputs()}

    @classmethod
    def from_export(
        cls, model: ResolvedModel, folder: Path, meta: dict[str, Any], graph: bytes | Path, *,
        optimized: bool = False, save_optimized: Path | None = None,
    ) -> OnnxEncoder:
        """The encoder for an export folder whose metadata and graph (bytes, or a file) were already checked.

        ``optimized``: the graph was already optimized by this runtime on this machine, so it is loaded as
        it is; ``save_optimized``: where to write the graph as optimized now, for later starts.
        """
        return cls(
            model, graph, folder / TOKENIZER_FILE, quantized=meta.get("quantization") is not None,
            dimension=int(meta["dimension"]), pooling=Pooling.from_dict(meta.get("pooling")),
            max_length=int(meta["max_length"]), optimized=optimized, save_optimized=save_optimized,
            graph_file=folder / MODEL_FILE if isinstance(graph, bytes) else None,
        )

    def _session(self, threads: int, save_optimized: Path | None = None) -> Any:
        import onnxruntime as ort

        options = _session_options(ort, threads, optimize=not self._optimized)
        if save_optimized is not None:
            options.optimized_model_filepath = str(save_optimized)
            options.log_severity_level = 3  # not the note that an optimized graph suits this machine only
        graph = self._graph if isinstance(self._graph, bytes) else str(self._graph)
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def _session_for(self, rows: int) -> Any:
        threads = intra_op_threads()
        if rows <= SINGLE_THREAD_MAX_TEXTS or threads == 1:
            return self._single
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._session(threads)
            return self._pool

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
        if len(texts) <= SINGLE_THREAD_MAX_TEXTS:  # no need to wake the tokenizer's thread pool either
            encodings = [self._tokenizer.encode(text) for text in texts]
        else:
            encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")  # similar lengths share a batch: little padding
        output = np.empty((len(texts), self._dimension), dtype=np.float32)
        # int8 scales each run's activations by the whole batch, so batching would make a text's vector
        # (and answer) depend on its neighbours: one text per run, runs in parallel on the cores instead.
        batch_size = 1 if self._kind == "onnx-int8" else max(1, batch_size)
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        results = self._map(lambda rows: self._encode_batch([encodings[i] for i in rows]), batches)
        for rows, vectors in zip(batches, _progress(results, len(batches), enabled=progress_wanted(progress)),
                                 strict=True):
            output[rows] = vectors
        return output

    def _map(self, encode: Callable[[np.ndarray], np.ndarray], batches: list[np.ndarray]) -> Iterator[np.ndarray]:
        """Single texts in parallel, one per core (each run on the one-thread session); batches in turn."""
        if len(batches) <= SINGLE_THREAD_MAX_TEXTS or len(batches[0]) > 1 or intra_op_threads() == 1:
            return map(encode, batches)
        with self._pool_lock:
            if self._runners is None:
                self._runners = ThreadPoolExecutor(intra_op_threads(), thread_name_prefix="spacebot-encode")
        return self._runners.map(encode, batches)

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
        hidden = self._session_for(len(encodings)).run(None, feeds)[0]
        return normalize_rows(pool(hidden, attention, self._pooling.mode))


@functools.cache
def intra_op_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_INTRA_OP_THREADS))


def _session_options(ort: Any, threads: int, *, optimize: bool = True) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else level.ORT_DISABLE_ALL
    # Pool threads spin briefly between runs: one short question encodes in 1.9 ms instead of 2.8 ms
    # (2 threads, 200 questions); the bench's event-loop lag figure watches what that costs the bot.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
    return options


def _progress(items: Iterable[T], total: int, *, enabled: bool) -> Iterator[T]:
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc="encoding", unit="batch")


def _read_json_file(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
