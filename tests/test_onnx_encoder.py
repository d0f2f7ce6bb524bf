"""The ONNX fast path: same vectors as sentence-transformers, same answers, cached export, no torch at query time.

Uses the real bundled model. The two exports (int8 and fp32) run once per session into a temporary
cache folder; everything else reuses them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bot.core import onnx_cache, onnx_export
from bot.core.config import DEFAULT_MODEL, EngineSettings
from bot.core.embedding import Encoder, ResolvedModel, resolve_model
from bot.core.encoders import load_onnx_encoder
from bot.core.engine import Engine
from bot.core.evaluation import evaluate
from bot.core.files import file_sha256
from bot.core.knowledge import load_knowledge
from bot.core.onnx_export import INT8_MIN_COSINE
from bot.core.onnx_runtime import EXPORT_META, MODEL_FILE, TOKENIZER_FILE, OnnxEncoder
from bot.core.questions import Question, load_questions
from bot.core.store import open_or_build
from tests.conftest import QUESTIONS, REPO, SHIPPED_KNOWLEDGE, make_settings

TEXTS = [
    "When is Russia leaving the ISS?",
    "wen is roscomos leaving iss",
    "What did the Artemis Accords signatories agree about deconfliction of lunar activities, safety zones, "
    "interoperability and the release of scientific data, and which countries signed in 2024?",
    "Was ist die Internationale Raumstation?",
]
# One- and two-token inputs: exact in fp32; int8 drifts most on them (see onnx_export.INT8_MIN_COSINE).
DEGENERATE = ["", "ok", "ISS"]


@pytest.fixture(scope="session")
def bundled_model() -> ResolvedModel:
    return resolve_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def onnx_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index folder whose ``onnx/`` cache holds the session's exports (as ``load_encoder`` lays it out).

    A fixed folder under the session's base temp dir: test modules that import these fixtures get their own
    fixture instances, but find the export already cached there instead of exporting again.
    """
    index_dir = tmp_path_factory.getbasetemp() / "onnx-shared" / "index"
    index_dir.mkdir(parents=True, exist_ok=True)
    return index_dir


@pytest.fixture(scope="session")
def int8_encoder(bundled_model: ResolvedModel, onnx_index_dir: Path) -> OnnxEncoder:
    return load_onnx_encoder(bundled_model, onnx_index_dir / "onnx", quantize=True)


@pytest.fixture(scope="session")
def fp32_encoder(bundled_model: ResolvedModel, onnx_index_dir: Path) -> OnnxEncoder:
    return load_onnx_encoder(bundled_model, onnx_index_dir / "onnx", quantize=False)


def all_questions() -> list[Question]:
    return [*load_questions(QUESTIONS / "tuning"), *load_questions(QUESTIONS / "holdout")]


@pytest.fixture(scope="session")
def onnx_engine(onnx_index_dir: Path, int8_encoder: OnnxEncoder) -> Engine:
    settings = make_settings(onnx_index_dir.parent, knowledge_dir=SHIPPED_KNOWLEDGE, index_dir=onnx_index_dir,
                             encoder="onnx", judge_model=None)
    engine = Engine.open(settings, int8_encoder)
    yield engine
    engine.close()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


# -- vectors ----------------------------------------------------------------------------------


def test_int8_vectors_match_sentence_transformers_within_the_export_threshold_on_every_project_question(
    int8_encoder: OnnxEncoder, real_encoder: Encoder
) -> None:
    """One at a time (a query) >= 0.95 as the export check demands; in batches, which share activation scales,
    short texts ("ok thanks") drift a little further (measured 0.949)."""
    texts = [*TEXTS, *(q.text for q in all_questions())]
    reference = real_encoder.encode(texts)
    alone = _cosines(int8_encoder.encode(texts, batch_size=1), reference)
    batched = _cosines(int8_encoder.encode(texts), reference)
    assert alone.min() >= INT8_MIN_COSINE, sorted(zip(alone.tolist(), texts, strict=True))[:3]
    assert batched.min() >= 0.94, sorted(zip(batched.tolist(), texts, strict=True))[:3]
    long_texts = [i for i, text in enumerate(texts) if len(text.split()) >= 6]
    assert alone[long_texts].min() >= 0.98


def test_fp32_vectors_match_sentence_transformers_within_cosine_0_9999(
    fp32_encoder: OnnxEncoder, real_encoder: Encoder
) -> None:
    texts = [*TEXTS, *DEGENERATE]
    cosines = _cosines(fp32_encoder.encode(texts), real_encoder.encode(texts))
    assert cosines.min() >= 0.9999, cosines


def test_fp32_matches_sentence_transformers_on_text_longer_than_256_tokens(
    fp32_encoder: OnnxEncoder, real_encoder: Encoder
) -> None:
    long_text = [" ".join(["orbital debris mitigation guidelines"] * 200)]
    assert _cosines(fp32_encoder.encode(long_text), real_encoder.encode(long_text))[0] >= 0.9999


def test_vectors_are_normalized_float32_in_input_order_whatever_the_batch_size(fp32_encoder: OnnxEncoder) -> None:
    batched = fp32_encoder.encode(TEXTS, batch_size=2)
    one_by_one = np.vstack([fp32_encoder.encode([text]) for text in TEXTS])
    assert batched.dtype == np.float32
    assert batched.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert _cosines(batched, one_by_one).min() >= 0.9999  # sorting and padding per batch change nothing


def test_an_int8_vector_does_not_depend_on_the_texts_encoded_beside_it(int8_encoder: OnnxEncoder) -> None:
    """Dynamic quantization scales activations per run: batched, a question's vector (and so its answer)
    would move with whatever else shares its micro-batch."""
    crowd = [*TEXTS, *(f"filler question number {i} about the lunar gateway and its budget" for i in range(12))]
    batched = int8_encoder.encode(crowd, batch_size=len(crowd))[:len(TEXTS)]
    one_by_one = np.vstack([int8_encoder.encode([text]) for text in TEXTS])
    np.testing.assert_array_equal(batched, one_by_one)


def test_encoding_nothing_returns_an_empty_matrix(int8_encoder: OnnxEncoder) -> None:
    assert int8_encoder.encode([]).shape == (0, 384)


def test_encoder_reports_kind_dimension_and_the_settings_model_name(
    int8_encoder: OnnxEncoder, fp32_encoder: OnnxEncoder
) -> None:
    assert (int8_encoder.kind, fp32_encoder.kind) == ("onnx-int8", "onnx-fp32")
    assert int8_encoder.dimension == fp32_encoder.dimension == 384
    assert int8_encoder.model_name == DEFAULT_MODEL


def test_encoder_is_safe_to_call_from_several_threads(int8_encoder: OnnxEncoder) -> None:
    expected = int8_encoder.encode(TEXTS)
    results: list[np.ndarray] = []

    def work() -> None:
        results.extend(int8_encoder.encode(TEXTS) for _ in range(5))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


# -- the cached export ------------------------------------------------------------------------


def test_cached_export_is_loaded_without_exporting_again(
    bundled_model: ResolvedModel, onnx_index_dir: Path, int8_encoder: OnnxEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the export should have been reused")

    monkeypatch.setattr(onnx_export, "export_model", refuse)
    again = load_onnx_encoder(bundled_model, onnx_index_dir / "onnx", quantize=True)
    np.testing.assert_allclose(again.encode(TEXTS), int8_encoder.encode(TEXTS), atol=1e-6)


def test_export_folder_holds_graph_tokenizer_and_hashed_metadata(
    onnx_index_dir: Path, int8_encoder: OnnxEncoder
) -> None:
    folders = sorted((onnx_index_dir / "onnx").glob("*-int8-*"))
    assert len(folders) == 1
    meta = json.loads((folders[0] / EXPORT_META).read_text(encoding="utf-8"))
    assert meta["onnx_sha256"] == file_sha256(folders[0] / MODEL_FILE)
    expected = (384, 256, onnx_cache.quantization_target())
    assert (meta["dimension"], meta["max_length"], meta["quantization"]) == expected
    assert (folders[0] / TOKENIZER_FILE).is_file()
    assert not list((onnx_index_dir / "onnx").glob(".tmp-*"))


def test_corrupt_cached_graph_is_detected_and_exported_again(
    bundled_model: ResolvedModel, onnx_index_dir: Path, int8_encoder: OnnxEncoder, tmp_path: Path
) -> None:
    cache = tmp_path / "onnx"
    shutil.copytree(onnx_index_dir / "onnx", cache, ignore=shutil.ignore_patterns("*-fp32-*"))
    graph = next(cache.glob("*-int8-*")) / MODEL_FILE
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])  # a truncated write
    repaired = load_onnx_encoder(bundled_model, cache, quantize=True)
    assert _cosines(repaired.encode(TEXTS), int8_encoder.encode(TEXTS)).min() >= 0.9999
    meta = json.loads((graph.parent / EXPORT_META).read_text(encoding="utf-8"))
    assert meta["onnx_sha256"] == file_sha256(graph)


def test_export_key_changes_with_the_quantize_flag_library_versions_and_model_files(
    bundled_model: ResolvedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_copy = tmp_path / "model"
    shutil.copytree(bundled_model.location, model_copy)
    copied = ResolvedModel(bundled_model.name, str(model_copy))
    cache = tmp_path / "cache"
    base = onnx_cache.export_key(copied, cache, quantize=True)
    assert onnx_cache.export_key(copied, cache, quantize=True) == base
    assert onnx_cache.export_key(copied, cache, quantize=False) != base
    (model_copy / "config.json").write_text((model_copy / "config.json").read_text() + "\n", encoding="utf-8")
    changed_model = onnx_cache.export_key(copied, cache, quantize=True)
    assert changed_model != base
    monkeypatch.setattr(onnx_cache, "library_versions", lambda: {"onnxruntime": "0.0.0"})
    assert onnx_cache.export_key(copied, cache, quantize=True) != changed_model


def test_concurrent_loads_export_once_and_never_see_a_half_written_export(
    bundled_model: ResolvedModel, onnx_index_dir: Path, int8_encoder: OnnxEncoder, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four loaders race on an empty cache: the lock lets one export; the others wait, then reuse it."""
    finished = next((onnx_index_dir / "onnx").glob("*-int8-*"))
    exports: list[Path] = []

    def slow_copy_export(model: ResolvedModel, folder: Path, *, key: str, quantize: bool) -> None:
        exports.append(folder)
        time.sleep(0.3)  # long enough for the other loaders to reach the lock
        staging = folder.with_name(f".tmp-{folder.name}")
        shutil.copytree(finished, staging)
        meta = json.loads((staging / EXPORT_META).read_text(encoding="utf-8"))
        (staging / EXPORT_META).write_text(json.dumps({**meta, "key": key}), encoding="utf-8")
        os.rename(staging, folder)

    monkeypatch.setattr(onnx_export, "export_model", slow_copy_export)
    cache = tmp_path / "onnx"
    loaded: list[OnnxEncoder] = []
    threads = [
        threading.Thread(target=lambda: loaded.append(load_onnx_encoder(bundled_model, cache, quantize=True)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(exports) == 1
    assert len(loaded) == 4


def test_a_remote_model_name_is_refused_rather_than_downloaded(tmp_path: Path) -> None:
    with pytest.raises(onnx_export.OnnxExportError, match="nothing is downloaded"):
        load_onnx_encoder(ResolvedModel("some/hub-model", "some/hub-model"), tmp_path, quantize=True)


# -- the engine on the fast path --------------------------------------------------------------


def _right_calls(engine: Engine, questions: list[Question]) -> float:
    """Share of questions where answering or declining was the right call."""
    answers = engine.answer_many([q.text for q in questions], None, [q.context for q in questions])
    return sum(answer.answered != question.declines for question, answer in zip(questions, answers, strict=True)) / len(
        questions
    )


def test_onnx_int8_answers_are_no_worse_than_torch_on_the_question_set(
    onnx_engine: Engine, shipped_engine: Engine
) -> None:
    questions = all_questions()
    fast = evaluate(questions, lambda texts, contexts: onnx_engine.answer_many(texts, None, contexts),
                    onnx_engine.knowledge)
    reference = evaluate(questions, lambda texts, contexts: shipped_engine.answer_many(texts, None, contexts),
                         shipped_engine.knowledge)
    assert onnx_engine.encoder.kind == "onnx-int8"
    assert fast.hit_at_3.rate >= reference.hit_at_3.rate - 0.01, (fast.summary_lines(), reference.summary_lines())
    assert _right_calls(onnx_engine, questions) >= _right_calls(shipped_engine, questions) - 0.01


def test_index_built_by_torch_is_rebuilt_when_the_query_encoder_is_onnx(
    shipped_settings: EngineSettings, shipped_engine: Engine, int8_encoder: OnnxEncoder, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(shipped_settings.index_dir, index_dir, ignore=shutil.ignore_patterns(".build.lock", "onnx"))
    knowledge = load_knowledge(SHIPPED_KNOWLEDGE).knowledge
    assert knowledge is not None
    stored, report = open_or_build(knowledge, int8_encoder, index_dir)
    assert stored.manifest.encoder == "onnx-int8"
    assert report.reused == 0 and len(report.added) == len(knowledge)
    assert report.rebuilt_reason is not None and "torch" in report.rebuilt_reason
    _, second = open_or_build(knowledge, int8_encoder, index_dir)
    assert second.reused == len(knowledge) and not second.added


def test_spacebot_ask_on_cached_onnx_export_imports_no_torch_or_transformers(
    onnx_engine: Engine, onnx_index_dir: Path
) -> None:
    script = textwrap.dedent(
        """
        import sys
        from bot.cli import main
        code = main(["ask", "When is Russia leaving the ISS?"])
        heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "optimum") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy))
        sys.exit(code)
        """
    )
    env = {**os.environ, "SPACEBOT_INDEX_DIR": str(onnx_index_dir), "SPACEBOT_KNOWLEDGE_DIR": str(SHIPPED_KNOWLEDGE),
           "SPACEBOT_ENCODER": "onnx", "SPACEBOT_ONNX_QUANTIZE": "true"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY=\n" in result.stdout, result.stdout[-500:]
    assert "Sources:" in result.stdout


@pytest.mark.parametrize("command", [["--help"], ["validate", str(SHIPPED_KNOWLEDGE)]])
def test_help_and_validate_import_no_model_index_or_runtime_libraries(command: list[str]) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from bot.cli import main
        try:
            main({command!r})
        except SystemExit:
            pass
        heavy = ("torch", "sentence_transformers", "transformers", "faiss", "onnxruntime", "tokenizers")
        print("HEAVY=" + ",".join(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60,
                            check=False)
    assert "HEAVY=\n" in result.stdout, (result.stdout[-500:], result.stderr[-500:])
