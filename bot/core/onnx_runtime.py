"""The fast query encoder at run time: an exported ONNX graph run with onnxruntime + ``tokenizers``.

This module imports numpy, onnxruntime and ``tokenizers`` only (the last two when an encoder is
created): never torch, transformers or sentence-transformers. The export that produces the graph lives
in :mod:`bot.core.onnx_export`; :func:`bot.core.encoders.load_encoder` ties the two together.

The graph is the model's Transformer module only: pooling and normalization run here, as the model's
own sentence-transformers config describes them (:mod:`bot.core.pooling`, recorded in ``export.json``).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bot.core.embedding import ResolvedModel, normalize_rows, progress_wanted
from bot.core.pooling import Pooling, pool

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 256
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_META = "export.json"
# Measured on the 2-core EPYC: a batch of 32 runs in 85 ms on 1 thread, 49 ms on 2; one short question
# (fused int8) in 1.4 ms on 2 threads, 2.6 ms on 1 -- but 2.5-6.7 ms on 1 thread against 7.7-9.5 ms on
# 2 when other processes keep the other core busy (see OnnxEncoder).
MAX_INTRA_OP_THREADS = 4
# Up to this many texts are tokenized one by one: no need to wake the tokenizer's thread pool.
TOKENIZE_ALONE_MAX_TEXTS = 4
# A lone text runs on whichever session has been faster lately (see _FasterSession): every this many
# runs re-times the other one; times are smoothed by this factor, per token plus this fixed overhead.
EXPLORE_EVERY = 20
SMOOTHING = 0.2
RUN_OVERHEAD_TOKENS = 16

# ---------------------------------------------------------------------------------------------
# The encoder


class OnnxEncoder:
    """Sentence vectors from an ONNX graph: tokenize, run, pool as the model says, L2-normalize.

    One question runs on every core while that is faster, which it is on an idle machine; when other
    work keeps the cores busy, the pool's threads wait their turn and one thread is faster, so the
    encoder times both (:class:`_FasterSession`), and while other encodes of its own are running it
    uses one thread without asking. Several int8 texts run side by side, one per core,
    each on a one-thread session; an fp32 batch uses every core. The sessions give bit-identical
    vectors (checked on 1,018 questions and passages): which one ran never changes an answer.
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
        self._all_cores = self._session(intra_op_threads(), save_optimized)
        if graph_file is not None:
            self._graph = graph_file  # the bytes are not kept: a second session reads the file
        self._one_core: Any = None if intra_op_threads() > 1 else self._all_cores
        self._lock = threading.Lock()
        self._runners: ThreadPoolExecutor | None = None
        self._input_names = {i.name for i in self._all_cores.get_inputs()}
        self._faster = _FasterSession()
        self._running = 0  # encode calls in progress, this one included

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

    def _one_core_session(self) -> Any:
        with self._lock:
            if self._one_core is None:
                self._one_core = self._session(1)
            return self._one_core

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
        with self._lock:
            self._running += 1
            crowded = self._running > 1
        try:
            if len(texts) == 1:
                return self._encode_lone(self._tokenizer.encode(texts[0]), crowded=crowded)
            return self._encode_many(texts, batch_size, progress)
        finally:
            with self._lock:
                self._running -= 1

    def _encode_many(self, texts: Sequence[str], batch_size: int, progress: bool) -> np.ndarray:
        if len(texts) <= TOKENIZE_ALONE_MAX_TEXTS:
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
        results = self._map(lambda rows, session: self._encode_batch([encodings[i] for i in rows], session), batches)
        for rows, vectors in zip(batches, _progress(results, len(batches), enabled=progress_wanted(progress)),
                                 strict=True):
            output[rows] = vectors
        return output

    def _map(self, encode: Callable[[np.ndarray, Any], np.ndarray], batches: list[np.ndarray]) -> Iterator[np.ndarray]:
        """Several int8 texts side by side, one per core; batches in turn, on every core."""
        if len(batches) > 1 and len(batches[0]) == 1 and intra_op_threads() > 1:
            session = self._one_core_session()
            with self._lock:
                if self._runners is None:
                    self._runners = ThreadPoolExecutor(intra_op_threads(), thread_name_prefix="spacebot-encode")
            if len(batches) <= intra_op_threads():
                # One text per core: the calling thread runs the first itself rather than wait for a pool
                # thread to wake (a follow-up and its resolved form: 2.4 ms instead of 2.7 ms, same vectors).
                others = [self._runners.submit(encode, rows, session) for rows in batches[1:]]
                return iter([encode(batches[0], session), *(other.result() for other in others)])
            return self._runners.map(lambda rows: encode(rows, session), batches)
        return (encode(rows, self._all_cores) for rows in batches)

    def _encode_lone(self, encoding: Any, *, crowded: bool) -> np.ndarray:
        if intra_op_threads() == 1:
            return self._encode_batch([encoding], self._all_cores)
        if crowded:  # other encodes hold the cores (a busy bot): a pool's threads would only wait for them
            return self._encode_batch([encoding], self._one_core_session())
        every_core = self._faster.pick()
        session = self._all_cores if every_core else self._one_core_session()
        start = time.perf_counter()
        vectors = self._encode_batch([encoding], session)
        self._faster.record(every_core, (time.perf_counter() - start) / (len(encoding.ids) + RUN_OVERHEAD_TOKENS))
        return vectors

    def _encode_batch(self, encodings: Sequence[Any], session: Any) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        input_ids = np.zeros((len(encodings), width), dtype=np.int64)
        attention = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            input_ids[row, :len(encoding.ids)] = encoding.ids
            attention[row, :len(encoding.ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = session.run(None, feeds)[0]
        return normalize_rows(pool(hidden, attention, self._pooling.mode))


@functools.cache
def intra_op_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_INTRA_OP_THREADS))


class _FasterSession:
    """Which session runs a lone text faster lately: ``True`` for every core, ``False`` for one thread.
    Each is timed twice first (the first run of a session is its warm-up, not counted); then the
    faster runs, and every EXPLORE_EVERY-th run re-times the other, so a change in load is noticed."""

    def __init__(self) -> None:
        self._cost: dict[bool, float] = {}
        self._tried: dict[bool, int] = {True: 0, False: 0}
        self._runs = 0
        self._lock = threading.Lock()

    def pick(self) -> bool:
        with self._lock:
            self._runs += 1
            untried = [every_core for every_core in (True, False) if every_core not in self._cost]
            if untried:
                return untried[0]
            faster = self._cost[True] <= self._cost[False]
            return not faster if self._runs % EXPLORE_EVERY == 0 else faster

    def record(self, every_core: bool, cost: float) -> None:
        with self._lock:
            self._tried[every_core] += 1
            if self._tried[every_core] == 1:
                return
            old = self._cost.get(every_core)
            self._cost[every_core] = cost if old is None else old + SMOOTHING * (cost - old)


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
