"""An ONNX export is checked against sentence-transformers before use; one that drifts is refused.

The real bundled model: the session's exports (tests/test_onnx_encoder.py's fixtures, in a shared
folder) are reused, and a broken export is made by recording the wrong pooling beside a real graph.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.core import encoders, onnx_export
from bot.core.embedding import ResolvedModel, TorchEncoder
from bot.core.onnx_cache import export_folder_name, export_key, rejection_file
from bot.core.onnx_export import (
    INT8_MIN_COSINE,
    VERIFY_SAMPLE,
    OnnxMismatchError,
    compare_with_reference,
    ensure_export,
    verify_export,
)
from bot.core.onnx_runtime import EXPORT_META, OnnxEncoder
from tests.conftest import make_settings

# The session's exports, shared with tests/test_onnx_encoder.py rather than exported again.
from tests.test_onnx_encoder import bundled_model, fp32_encoder, int8_encoder, onnx_index_dir  # noqa: F401


def export_meta(index_dir: Path, kind: str) -> dict[str, Any]:
    folder = next((index_dir / "onnx").glob(f"*-{kind}-*"))
    return json.loads((folder / EXPORT_META).read_text(encoding="utf-8"))


# -- the comparison ---------------------------------------------------------------------------


def test_identical_vectors_pass_and_report_their_lowest_cosine() -> None:
    vectors = np.eye(3, dtype=np.float32)
    assert compare_with_reference(vectors, vectors, ("a", "b", "c"), 0.999) == pytest.approx(1.0)


def test_a_vector_under_its_threshold_is_refused_naming_the_text() -> None:
    reference = np.eye(2, dtype=np.float32)
    candidate = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)  # cosine 0.8 on the second text
    with pytest.raises(OnnxMismatchError, match=r"cosine 0\.8000 < 0\.999 on 'second text'"):
        compare_with_reference(candidate, reference, ("first", "second text"), 0.999)


def test_nan_vectors_are_refused() -> None:
    candidate = np.array([[np.nan, 0.0]], dtype=np.float32)
    with pytest.raises(OnnxMismatchError):
        compare_with_reference(candidate, np.array([[1.0, 0.0]], dtype=np.float32), ("x",), 0.5)


def test_the_check_sample_has_sentences_and_one_or_two_word_texts() -> None:
    words = [len(text.split()) for text in VERIFY_SAMPLE]
    assert min(words) <= 2 and max(words) >= 40


# -- the real model ---------------------------------------------------------------------------


def test_fp32_export_records_its_pooling_from_the_model_and_a_cosine_of_at_least_0_999(
    fp32_encoder: OnnxEncoder, onnx_index_dir: Path  # noqa: F811
) -> None:
    meta = export_meta(onnx_index_dir, "fp32")
    assert meta["pooling"] == {"mode": "mean", "normalize": True}
    assert meta["min_cosine"] >= 0.999


def test_int8_export_passes_its_check_with_a_recorded_cosine_that_shows_quantization(
    int8_encoder: OnnxEncoder, onnx_index_dir: Path  # noqa: F811
) -> None:
    meta = export_meta(onnx_index_dir, "int8")
    assert INT8_MIN_COSINE <= meta["min_cosine"] < 0.999


def test_the_runtime_uses_the_pooling_the_export_recorded(
    bundled_model: ResolvedModel, fp32_encoder: OnnxEncoder, onnx_index_dir: Path  # noqa: F811
) -> None:
    folder = next((onnx_index_dir / "onnx").glob("*-fp32-*"))
    meta = {**export_meta(onnx_index_dir, "fp32"), "pooling": {"mode": "cls", "normalize": True}}
    cls_encoder = OnnxEncoder.from_export(bundled_model, folder, meta, (folder / "model.onnx").read_bytes())
    cosines = np.sum(cls_encoder.encode(VERIFY_SAMPLE) * fp32_encoder.encode(VERIFY_SAMPLE), axis=1)
    assert cls_encoder.pooling.mode == "cls"
    assert cosines.min() < 0.9


def test_verify_refuses_a_real_export_whose_pooling_is_wrong(
    bundled_model: ResolvedModel, fp32_encoder: OnnxEncoder, onnx_index_dir: Path  # noqa: F811
) -> None:
    folder = next((onnx_index_dir / "onnx").glob("*-fp32-*"))
    meta = {**export_meta(onnx_index_dir, "fp32"), "pooling": {"mode": "max", "normalize": True}}
    with pytest.raises(OnnxMismatchError, match="differ from sentence-transformers"):
        verify_export(bundled_model, folder, meta)


@pytest.fixture
def wrong_pooling_export(
    fp32_encoder: OnnxEncoder, onnx_index_dir: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> list[Path]:
    """Exports copy the session's real fp32 graph but record cls pooling; returns the staging folders used."""
    finished = next((onnx_index_dir / "onnx").glob("*-fp32-*"))
    staged: list[Path] = []

    def copy_with_cls_pooling(model: ResolvedModel, staging: Path, *, quantize: bool) -> dict[str, Any]:
        staged.append(staging)
        for name in ("model.onnx", "tokenizer.json"):
            shutil.copyfile(finished / name, staging / name)
        meta = json.loads((finished / EXPORT_META).read_text(encoding="utf-8"))
        return {key: meta[key] for key in ("onnx_sha256", "dimension", "max_length", "quantization")} | {
            "pooling": {"mode": "cls", "normalize": True}
        }

    monkeypatch.setattr(onnx_export, "_export_into", copy_with_cls_pooling)
    return staged


def test_a_refused_export_leaves_no_folder_and_is_not_exported_again(
    bundled_model: ResolvedModel, wrong_pooling_export: list[Path], tmp_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = tmp_path / "onnx"
    with pytest.raises(OnnxMismatchError, match="cosine"):
        ensure_export(bundled_model, cache, quantize=False)
    folder = cache / export_folder_name(bundled_model, quantize=False, key=export_key(bundled_model, cache,
                                                                                       quantize=False))
    assert len(wrong_pooling_export) == 1
    assert not folder.exists() and not wrong_pooling_export[0].exists()
    assert rejection_file(folder).is_file()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a rejected export should not be tried again")

    monkeypatch.setattr(onnx_export, "export_model", refuse)
    with pytest.raises(OnnxMismatchError, match="checked before"):
        ensure_export(bundled_model, cache, quantize=False)


def test_load_encoder_falls_back_to_torch_with_a_warning_when_the_export_is_refused(
    bundled_model: ResolvedModel, wrong_pooling_export: list[Path], tmp_path: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(tmp_path, encoder="onnx", onnx_quantize=False)
    with caplog.at_level(logging.WARNING, logger="bot.core.encoders"):
        encoder = encoders.load_encoder(settings)
    assert isinstance(encoder, TorchEncoder)
    warnings = [r for r in caplog.records if r.name == "bot.core.encoders" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "using sentence-transformers on torch" in warnings[0].getMessage()


def test_load_encoder_falls_back_to_torch_for_a_pipeline_the_runtime_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    modules = [{"path": "", "type": "x.Transformer"}, {"path": "1_Pooling", "type": "x.Pooling"},
               {"path": "2_Dense", "type": "x.Dense"}]
    (model / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    loaded: list[str] = []
    monkeypatch.setattr(encoders, "TorchEncoder", lambda resolved: loaded.append(resolved.location) or "torch")
    settings = make_settings(tmp_path, encoder="onnx", embedding_model=str(model))
    with caplog.at_level(logging.WARNING, logger="bot.core.encoders"):
        assert encoders.load_encoder(settings) == "torch"
    assert loaded == [str(model)]
    assert any("Dense" in r.getMessage() for r in caplog.records if r.name == "bot.core.encoders")
