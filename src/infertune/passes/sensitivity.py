"""Per-layer sensitivity to INT8: for each quantizable layer (Conv, Gemm, MatMul), the error
the model's output gets when that layer *alone* is quantized, ranked most sensitive first.
Not a pass (it changes no model): `mixed_precision` and `infertune sensitivity` use it.

How, and why this way is the cheapest correct one:
- the model is pre-processed once and calibrated once: ONNX Runtime's quantizer stores the
  ranges of every tensor in a calibration cache (`_ort_quant`), and each single-layer model
  is then `quantize_static(nodes_to_quantize=[layer])` reading that cache, so no layer pays
  for calibration again. Each layer costs one graph rewrite and one inference pass over the
  evaluation samples, the least that measuring it alone can cost.
- "alone" is ORT's own meaning of nodes_to_quantize: the layer's weights and its input
  activation are quantized (Q/DQ), everything else stays float, so the error is this
  layer's and not an accumulation of the layers before it.
- the error is measured on the model's output against the float model, on samples other
  than the calibration ones when there are enough (`split`): SQNR in dB (the ranking key,
  lower = more sensitive), top-1 agreement and cosine (infertune.metrics.fidelity).
The fully quantized model is measured the same way, for scale.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..types import ModelHandle
from .base import PassContext
from ._checks import check_literals
from .int8_static import OrtMethod

RANK_KEY = "sqnr_db"
_EVAL_BATCH = 16


@dataclass(frozen=True)
class SensitivityConfig:
    """How layers are quantized and measured.

    Attributes:
        method, per_channel, activations: as in int8_static (engine ort).
        samples: calibration samples (the first N of the data).
        eval_samples: samples the output error is measured on (after the calibration ones).
    """

    method: OrtMethod = "minmax"
    per_channel: bool = True
    activations: Literal["int8", "uint8"] = "int8"
    samples: int = 128
    eval_samples: int = 64

    def __post_init__(self) -> None:
        check_literals(self)
        if self.samples < 1 or self.eval_samples < 1:
            raise ValueError("samples and eval_samples must be at least 1")


def split(x: np.ndarray, config: SensitivityConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """(calibration, evaluation) inputs and how they were chosen: disjoint, the evaluation
    taking at most half of the data (at most eval_samples) and the calibration up to
    `samples` of the rest; one sample alone serves as both (said in the note)."""
    n = len(x)
    if n < 2:
        return x, x, "1 sample: calibration and evaluation share it"
    n_eval = min(config.eval_samples, n // 2)
    n_cal = min(config.samples, n - n_eval)
    return (x[:n_cal], x[n_cal:n_cal + n_eval],
            f"{n_cal} calibration + {n_eval} other evaluation samples")


def analyze(model: ModelHandle, ctx: PassContext,
            config: SensitivityConfig = SensitivityConfig()) -> dict[str, Any]:
    """Ranks the layers of `model` by the output error each one causes quantized alone.

    Returns:
        {"layers": [{"rank", "layer", "op", "sqnr_db", "top1_agreement", "cosine"}...],
         "all_quantized": the same for the whole model, "ranked_by", "data", settings}.
    """
    from . import _ort_quant as q
    from .int8_static import as_onnx

    source, exported = as_onnx(model, ctx)
    prepped, _prep = q.prepare(source, ctx)
    layers = q.weighted_layers(prepped)
    x_cal, x_eval, note = split(np.asarray(ctx.calibration.x, np.float32), config)
    settings = q.OrtSettings(config.method, config.per_channel, config.activations, len(x_cal),
                             q.reduce_range("auto")[0])
    reference = run_onnx(prepped, x_eval, ctx.threads)
    forced = [k["layer"] for k in q.default_float(prepped)]
    start = time.perf_counter()
    rows = [measure_layer(prepped, layer, x_cal, x_eval, reference, settings, ctx)
            for layer in layers]
    whole = _quantized_error(prepped, x_cal, x_eval, reference, settings, ctx, forced, None)
    return {"model": model.name, "engine": "onnxruntime", "method": config.method,
            "per_channel": config.per_channel, "activations": config.activations,
            "ranked_by": f"{RANK_KEY} (output SQNR with the layer alone quantized; lower = "
                         "more sensitive)",
            "data": {"calibration_samples": len(x_cal), "eval_samples": len(x_eval),
                     "note": note},
            "exported_to_onnx": exported, "seconds": round(time.perf_counter() - start, 2),
            "all_quantized": whole, "layers": rank(rows)}


def measure_layer(prepped, layer: dict[str, str], x_cal, x_eval, reference, settings,
                  ctx: PassContext) -> dict[str, Any]:
    """The output error with only `layer` quantized."""
    error = _quantized_error(prepped, x_cal, x_eval, reference, settings, ctx, (),
                             [layer["layer"]])
    return {"layer": layer["layer"], "op": layer["op"], **error}


def _quantized_error(prepped, x_cal, x_eval, reference, settings, ctx: PassContext,
                     exclude, only) -> dict[str, Any]:
    from ..metrics import fidelity
    from . import _ort_quant as q

    out = q.new_file(ctx, prepped, "sens")
    try:
        q.quantize_qdq(prepped, out, x_cal, settings, ctx, exclude=exclude, only=only)
        got = run_onnx(out, x_eval, ctx.threads)
    finally:
        out.unlink(missing_ok=True)
    fid = fidelity(reference, got)
    return {"sqnr_db": fid["sqnr_db"], "top1_agreement": fid["top1_agreement"],
            "cosine": fid["cosine"], "max_abs": fid["max_abs"]}


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most sensitive first: lowest SQNR (ties: lowest agreement), each with its rank."""
    def key(row: dict[str, Any]) -> tuple[float, float]:
        sqnr = row.get(RANK_KEY)
        agreement = row.get("top1_agreement")
        return (math.inf if sqnr is None else sqnr, 1.0 if agreement is None else agreement)

    ordered = sorted(rows, key=key)
    return [{"rank": i + 1, **row} for i, row in enumerate(ordered)]


def run_onnx(path, x: np.ndarray, threads: int | None) -> np.ndarray:
    """Every output of an ONNX model on `x`, in batches, flattened and side by side to
    N x D (a detector's heads all count: the first alone would hide the others' layers)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outs = []
    for i in range(0, len(x), _EVAL_BATCH):
        got = session.run(None, {name: x[i:i + _EVAL_BATCH]})
        outs.append(np.concatenate([np.asarray(o, np.float32).reshape(len(o), -1)
                                    for o in got], axis=1))
    return np.concatenate(outs)


def most_sensitive(ranking: dict[str, Any], k: int) -> list[dict[str, str]]:
    """The first k layers of a ranking as mixed_precision's kept list, with reasons."""
    n = len(ranking["layers"])
    return [{"layer": row["layer"],
             "reason": f"sensitivity rank {row['rank']} of {n}: output SQNR "
                       f"{_db(row['sqnr_db'])} with this layer alone quantized"}
            for row in ranking["layers"][:k]]


def _db(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} dB"
