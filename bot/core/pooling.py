"""Pooling, as the model's own sentence-transformers config says: how token vectors become one vector.

The ONNX graph is the model's Transformer module only; :class:`Pooling` (recorded in ``export.json``)
and :func:`pool` do the rest, as ``modules.json`` and the Pooling module's ``config.json`` describe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.errors import EncoderUnavailableError

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


def _read_json_file(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
