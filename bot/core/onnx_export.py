"""The ONNX export: the model exported once with sentence-transformers' own helpers, checked, then cached.

``SentenceTransformer(path, backend="onnx")`` exports the Transformer module through optimum; for int8,
``sentence_transformers.backend.export_optimized_onnx_model`` fuses it (O2) and onnxruntime quantizes
the fused graph with the CPU's preset (see :func:`_fused_int8`). Only an export imports torch; finding
a cached one (:mod:`bot.core.onnx_cache`) reads files and hashes.

Before an export is put in place, :func:`verify_export` runs it with the runtime
(:mod:`bot.core.onnx_runtime`) on :data:`VERIFY_SAMPLE` and compares with sentence-transformers on
torch; an export below the threshold is refused (:class:`OnnxMismatchError`) and remembered beside the
cache, so later starts fall back to torch at once instead of exporting again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.embedding import ResolvedModel, TorchEncoder, offline_hub
from bot.core.errors import EncoderUnavailableError
from bot.core.files import file_sha256, fsync_dir, fsync_file
from bot.core.onnx_cache import (
    EXPORT_FORMAT,
    atomic_write_json,
    export_folder_name,
    export_key,
    export_lock,
    library_versions,
    quantization_target,
    read_json,
    read_valid_export,
    rejection_file,
    replace_folder,
)
from bot.core.onnx_runtime import DEFAULT_MAX_LENGTH, EXPORT_META, MODEL_FILE, TOKENIZER_FILE, OnnxEncoder
from bot.core.pooling import read_pooling

log = logging.getLogger(__name__)

# Minimum cosine between an export's vectors and sentence-transformers' on VERIFY_SAMPLE, each text encoded
# alone (the single-query path; int8 vectors also move with their batch-mates, see below). Measured on the
# bundled all-MiniLM-L6-v2 (2-core EPYC, avx512_vnni preset) over this sample, the 702 project questions,
# the 356 shipped passages and 16 one- or two-word inputs (1,072 texts):
# - fp32 is the same computation in another runtime: >= 0.99999 on every text; anything below 0.999
#   means a broken export (wrong pooling, tokenizer or graph);
# - int8 dynamic quantization costs most where there are fewest tokens: lowest 0.967 ("ok thanks"),
#   0.974 on "thank you so much" + an emoji, 0.984 and up on every other text; on this sample 0.968
#   ("thanks!"), sentences 0.988 and up. 0.95 leaves room for other CPUs' int8 kernels. (In batches,
#   where activation scales are shared, the lowest was 0.949 on "ok thanks".)
# - a wrong pooling (cls or max where the model means mean) reaches at most 0.26 on some text of this
#   sample (fp32 and int8): refused by either threshold.
FP32_MIN_COSINE = 0.999
INT8_MIN_COSINE = 0.95
VERIFY_SAMPLE = (
    "When is Russia leaving the ISS?",
    "wen is roscomos leaving iss",
    "Which country signed the Artemis Accords last?",
    "What is the Outer Space Treaty?",
    "Was ist die Internationale Raumstation?",
    "NASA's budget request cuts Mars Sample Return; Congress has not yet passed the appropriations bill.",
    "The Artemis Accords are a set of non-binding principles for civil space exploration, signed by national "
    "space agencies, covering transparency, interoperability, emergency assistance, registration of space "
    "objects, release of scientific data, protection of heritage sites, space resources, deconfliction of "
    "activities through safety zones and the mitigation of orbital debris.",
    "thanks!",
    "ok",
    "ISS",
)


class OnnxExportError(EncoderUnavailableError):
    """The model could not be exported to ONNX."""


class OnnxMismatchError(OnnxExportError):
    """The exported graph's vectors differ from sentence-transformers' beyond the allowed threshold."""


# ---------------------------------------------------------------------------------------------
# Finding or making the export


def ensure_export(model: ResolvedModel, cache_dir: Path, *, quantize: bool) -> tuple[Path, dict[str, Any], bytes]:
    """The export folder, its metadata and the verified graph bytes; exports under a lock when needed."""
    if not model.is_local:
        raise OnnxExportError(f"{model.location} is not a local model folder (nothing is downloaded at run time)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = export_key(model, cache_dir, quantize=quantize)
    folder = cache_dir / export_folder_name(model, quantize=quantize, key=key)
    found = read_valid_export(folder, key)
    if found is not None:
        return folder, *found
    with export_lock(cache_dir):
        found = read_valid_export(folder, key)  # another process may have exported while we waited
        if found is None:
            _raise_if_rejected(folder, key)
            export_model(model, folder, key=key, quantize=quantize)
            found = read_valid_export(folder, key)
        if found is None:
            raise OnnxExportError(f"the export in {folder} does not verify right after it was written")
    return folder, *found


def _raise_if_rejected(folder: Path, key: str) -> None:
    rejected = read_json(rejection_file(folder))
    if rejected and rejected.get("key") == key:
        raise OnnxMismatchError(f"{rejected.get('reason')} (checked before; {rejection_file(folder).name})")


def export_model(model: ResolvedModel, folder: Path, *, key: str, quantize: bool) -> None:
    """Export and check in a staging folder beside ``folder``, then rename it into place (call under the lock)."""
    staging = folder.with_name(f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        meta = _export_into(model, staging, quantize=quantize)
        meta |= {"key": key, "format": EXPORT_FORMAT, "model": model.name, "versions": library_versions()}
        meta["min_cosine"] = verify_export(model, staging, meta)
        atomic_write_json(staging / EXPORT_META, meta)
        fsync_dir(staging)
        replace_folder(staging, folder)
    except OnnxMismatchError as exc:
        atomic_write_json(rejection_file(folder), {"key": key, "reason": str(exc)})
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when renamed into place
    log.info("exported %s to ONNX (%s, min cosine %.5f) in %s", model.name, "int8" if quantize else "fp32",
             meta["min_cosine"], folder)


# ---------------------------------------------------------------------------------------------
# Checking the export against sentence-transformers


def verify_export(model: ResolvedModel, folder: Path, meta: dict[str, Any]) -> float:
    """Run the export in ``folder`` on the sample; the lowest cosine to sentence-transformers on torch."""
    candidate = OnnxEncoder.from_export(model, folder, meta, (folder / MODEL_FILE).read_bytes())
    with _quiet_model_libraries():
        reference = TorchEncoder(model)
    threshold = INT8_MIN_COSINE if meta.get("quantization") else FP32_MIN_COSINE
    return compare_with_reference(candidate.encode(VERIFY_SAMPLE, batch_size=1), reference.encode(VERIFY_SAMPLE),
                                  VERIFY_SAMPLE, threshold)


def compare_with_reference(
    candidate: np.ndarray, reference: np.ndarray, texts: Sequence[str], threshold: float
) -> float:
    """The lowest row-wise cosine; raises :class:`OnnxMismatchError` naming the worst text when under ``threshold``."""
    cosines = np.sum(candidate * reference, axis=1) / (
        np.linalg.norm(candidate, axis=1) * np.linalg.norm(reference, axis=1) + 1e-12
    )
    cosines = np.nan_to_num(cosines, nan=-1.0)
    worst = int(np.argmin(cosines))
    if cosines[worst] < threshold:
        raise OnnxMismatchError(
            f"the ONNX export's vectors differ from sentence-transformers': cosine {cosines[worst]:.4f} < "
            f"{threshold} on {texts[worst]!r}"
        )
    return float(cosines[worst])


# ---------------------------------------------------------------------------------------------
# Running sentence-transformers' exporters


@contextlib.contextmanager
def _quiet_model_libraries() -> Iterator[None]:
    """Tracer warnings, deprecation notes and advice are for model authors, not for someone asking a question.

    Call with the libraries already imported: transformers resets its logger's level on first import.
    """
    loggers = [logging.getLogger(name) for name in ("sentence_transformers", "transformers", "optimum")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _export_into(model: ResolvedModel, staging: Path, *, quantize: bool) -> dict[str, Any]:
    """Run sentence-transformers' exporters; leave model.onnx and tokenizer.json in ``staging``."""
    offline_hub()
    pooling = read_pooling(Path(model.location))
    log.info("exporting %s to ONNX (first use; imports torch once)", model.name)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise OnnxExportError(f"the ONNX export needs sentence-transformers with optimum-onnx: {exc}") from exc
    with _quiet_model_libraries():
        work = staging / "work"
        st_model = SentenceTransformer(model.location, backend="onnx", device="cpu", model_kwargs={"export": True})
        st_model.save(str(work))
        graph = work / "onnx" / MODEL_FILE
        target = None
        if quantize:
            target = quantization_target()
            graph = _fused_int8(st_model, target, work)
    os.replace(graph, staging / MODEL_FILE)
    shutil.copyfile(Path(model.location) / TOKENIZER_FILE, staging / TOKENIZER_FILE)
    shutil.rmtree(work)
    for name in (MODEL_FILE, TOKENIZER_FILE):
        fsync_file(staging / name)
    return {
        "onnx_sha256": file_sha256(staging / MODEL_FILE),
        "fused": quantize,
        "dimension": int(st_model.get_embedding_dimension()),
        "max_length": int(st_model.max_seq_length or DEFAULT_MAX_LENGTH),
        "quantization": target,
        "pooling": pooling.as_dict(),
    }


def _fused_int8(st_model: Any, target: str, work: Path) -> Path:
    """Fuse attention, skip-layer-norm and GELU (sentence-transformers' O2), then quantize dynamically
    with the settings of optimum's preset for this CPU, as ``export_dynamic_quantized_onnx_model`` would.

    Quantized unfused, each attention stays a dozen small nodes: the fused graph has half the nodes and
    runs a short question in 1.4 ms instead of 2.1 ms (2 threads; 200 tuning questions, 2-core EPYC),
    with the same agreement with torch (lowest cosine 0.966 against 0.968, median 0.994 on 567
    questions). optimum's own quantizer cannot infer the fused operators' types, hence onnxruntime's.
    """
    import onnx
    from onnxruntime.quantization import quantize_dynamic
    from optimum.onnxruntime.configuration import AutoQuantizationConfig
    from sentence_transformers.backend import export_optimized_onnx_model

    export_optimized_onnx_model(st_model, "O2", str(work))
    preset = getattr(AutoQuantizationConfig, target)(is_static=False)
    fused, quantized = work / "onnx" / "model_O2.onnx", work / "onnx" / f"model_O2_{target}.onnx"
    with _without_root_records_from("onnxruntime"):  # its advice to pre-process is for model authors
        quantize_dynamic(
            fused, quantized, weight_type=preset.weights_dtype, per_channel=preset.per_channel,
            reduce_range=preset.reduce_range, op_types_to_quantize=preset.operators_to_quantize,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return quantized


@contextlib.contextmanager
def _without_root_records_from(package: str) -> Iterator[None]:
    """Drop what ``package`` logs through the root logger (``logging.warning(...)``) for a moment."""
    root = logging.getLogger()
    marker = f"{os.sep}{package}{os.sep}"

    def elsewhere(record: logging.LogRecord) -> bool:
        return marker not in record.pathname

    root.addFilter(elsewhere)
    try:
        yield
    finally:
        root.removeFilter(elsewhere)
