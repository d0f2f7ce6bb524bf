"""The ONNX runtime pools as the model's own sentence-transformers config says, not always by mean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.core.config import DEFAULT_MODEL
from bot.core.embedding import resolve_model
from bot.core.pooling import Pooling, UnsupportedModelError, pool, read_pooling

TRANSFORMER = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
POOLING = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
NORMALIZE = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
LEGACY_FLAGS = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
                "pooling_mode_mean_sqrt_len_tokens")


def write_model(folder: Path, pooling_config: dict[str, Any], modules: list[dict[str, Any]] | None = None) -> Path:
    """A model folder with just the files the pooling reader looks at."""
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config), encoding="utf-8")
    modules = [TRANSFORMER, POOLING, NORMALIZE] if modules is None else modules
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    return folder


def legacy_config(active: str) -> dict[str, Any]:
    return {"word_embedding_dimension": 4, **{flag: flag == active for flag in LEGACY_FLAGS}}


# -- reading the config -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "mode"),
    [("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max")],
)
def test_legacy_boolean_pooling_flags_give_the_mode(tmp_path: Path, flag: str, mode: str) -> None:
    assert read_pooling(write_model(tmp_path, legacy_config(flag))) == Pooling(mode=mode, normalize=True)


@pytest.mark.parametrize("value", ["cls", ["max"]])
def test_current_pooling_mode_key_is_read_as_a_string_or_a_one_item_list(tmp_path: Path, value: object) -> None:
    config = {"embedding_dimension": 4, "pooling_mode": value, "include_prompt": True}
    expected = value if isinstance(value, str) else value[0]
    assert read_pooling(write_model(tmp_path, config)).mode == expected


def test_no_pooling_flag_set_means_mean_as_in_sentence_transformers(tmp_path: Path) -> None:
    assert read_pooling(write_model(tmp_path, {"word_embedding_dimension": 4})).mode == "mean"


def test_normalize_follows_whether_modules_json_has_a_normalize_module(tmp_path: Path) -> None:
    model = write_model(tmp_path, legacy_config("pooling_mode_cls_token"), modules=[TRANSFORMER, POOLING])
    assert read_pooling(model) == Pooling(mode="cls", normalize=False)


def test_the_pooling_module_path_comes_from_modules_json(tmp_path: Path) -> None:
    elsewhere = {**POOLING, "path": "pool"}
    model = write_model(tmp_path, legacy_config("pooling_mode_mean_tokens"), modules=[TRANSFORMER, elsewhere])
    (model / "pool").mkdir()
    (model / "pool" / "config.json").write_text(json.dumps(legacy_config("pooling_mode_max_tokens")), encoding="utf-8")
    assert read_pooling(model).mode == "max"


def test_module_types_are_matched_by_class_name_whatever_the_package_path(tmp_path: Path) -> None:
    renamed = [{**m, "type": "sentence_transformers.sentence_transformer.modules." + m["type"].rsplit(".")[-1]}
               for m in (TRANSFORMER, POOLING, NORMALIZE)]
    assert read_pooling(write_model(tmp_path, legacy_config("pooling_mode_cls_token"), renamed)).mode == "cls"


@pytest.mark.parametrize(
    ("config", "modules", "message"),
    [
        ({"pooling_mode": ["mean", "max"]}, None, "not supported"),
        ({"pooling_mode": "weightedmean"}, None, "not supported"),
        ({"pooling_mode": "mean"}, [TRANSFORMER, POOLING, {"path": "2_Dense", "type": "x.Dense"}], "Dense"),
        ({"pooling_mode": "mean"}, [TRANSFORMER, NORMALIZE], "no Pooling module"),
    ],
    ids=["two-modes", "weightedmean", "dense-layer", "no-pooling-module"],
)
def test_a_pipeline_the_runtime_cannot_reproduce_is_refused_by_name(
    tmp_path: Path, config: dict[str, Any], modules: list[dict[str, Any]] | None, message: str
) -> None:
    with pytest.raises(UnsupportedModelError, match=message):
        read_pooling(write_model(tmp_path, config, modules))


def test_missing_modules_json_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"modules\.json"):
        read_pooling(tmp_path)


def test_the_bundled_model_pools_by_mean_and_normalizes() -> None:
    assert read_pooling(Path(resolve_model(DEFAULT_MODEL).location)) == Pooling(mode="mean", normalize=True)


def test_pooling_round_trips_through_export_metadata() -> None:
    assert Pooling.from_dict(Pooling(mode="max", normalize=False).as_dict()) == Pooling(mode="max", normalize=False)
    with pytest.raises(UnsupportedModelError):
        Pooling.from_dict({"mode": "weightedmean"})


# -- applying it ------------------------------------------------------------------------------

# Two texts: the first has 3 real tokens, the second 1 real token and 2 padding tokens full of large values.
HIDDEN = np.array(
    [
        [[1.0, 0.0], [3.0, 4.0], [5.0, -4.0]],
        [[2.0, 6.0], [100.0, 100.0], [-100.0, 100.0]],
    ],
    dtype=np.float32,
)
MASK = np.array([[1, 1, 1], [1, 0, 0]])


def test_mean_pooling_averages_real_tokens_only() -> None:
    np.testing.assert_allclose(pool(HIDDEN, MASK, "mean"), [[3.0, 0.0], [2.0, 6.0]])


def test_cls_pooling_takes_the_first_token() -> None:
    np.testing.assert_allclose(pool(HIDDEN, MASK, "cls"), [[1.0, 0.0], [2.0, 6.0]])


def test_max_pooling_ignores_padding() -> None:
    np.testing.assert_allclose(pool(HIDDEN, MASK, "max"), [[5.0, 4.0], [2.0, 6.0]])


def test_mean_sqrt_len_pooling_divides_the_sum_by_the_root_of_the_length() -> None:
    np.testing.assert_allclose(pool(HIDDEN, MASK, "mean_sqrt_len_tokens"), [[9.0 / np.sqrt(3), 0.0], [2.0, 6.0]],
                               rtol=1e-6)
