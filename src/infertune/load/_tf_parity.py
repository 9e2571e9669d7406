"""Parity of a converted TensorFlow-family model with its original framework.

The criterion is the one runtimes are held to (measure/parity.py): max |converted − original|
<= rel × max |original| (a floor of 1e-6 keeps an all-zero output checkable) *and* cosine
>= 1 − rel over the flattened outputs. `load` sits below `measure` in the layering
(.importlinter), so the comparison is written here for the loader rather than imported.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import UnsupportedModel
from .tensorflow import LABELS

if TYPE_CHECKING:
    from ._tf_sources import TFSource

PARITY_SAMPLES = 2
PARITY_SEED = 0
# Converting changes kernels, not maths: TF/XNNPACK and ONNX Runtime differ by float rounding
# (~1e-6 relative on these models). 1e-3 of the output's magnitude (and cosine >= 1 - 1e-3)
# catches a wrong op, a wrong layout or a dropped layer while leaving a wide margin.
PARITY_REL = 1e-3
PARITY_WHY = ("tf2onnx conversion: the same FP32 maths on other kernels (TensorFlow or the "
              "TFLite interpreter vs ONNX Runtime), rounding differences only")
# An INT8 TFLite model becomes QuantizeLinear/DequantizeLinear around float ops. Both sides
# compute in integers, but a value that lands near a rounding tie may take the neighbouring
# int8 step (seen here: one step of the output, 1/255 of its range, ~1% of max |output|).
# 3e-2 of the output's magnitude allows a few such steps and still catches a wrong scale,
# zero point or layout (errors of 10% or more).
PARITY_REL_INT8 = 3e-2
PARITY_WHY_INT8 = ("tf2onnx conversion of an INT8 model: the same integer maths, but a "
                   "rounding tie may take the neighbouring int8 step")
_FLOOR = 1e-6


def compare(references: Sequence[list], outputs: Sequence[list], rel: float,
            why: str) -> dict[str, Any]:
    """{"passed","max_abs_diff","cosine","tolerance","rel_tolerance","why","inputs","message"}."""
    out = {"passed": False, "max_abs_diff": None, "cosine": None, "tolerance": None,
           "rel_tolerance": rel, "why": why, "inputs": len(references), "message": None}
    shapes = [[np.shape(a) for a in r] for r in references]
    if shapes != [[np.shape(a) for a in o] for o in outputs]:
        out["message"] = f"output shapes differ: {shapes[0]} in the original"
        return out
    ref = np.concatenate([np.ravel(a).astype(np.float64) for r in references for a in r])
    got = np.concatenate([np.ravel(a).astype(np.float64) for o in outputs for a in o])
    if not np.all(np.isfinite(got)):
        out["message"] = "the converted model outputs NaN or Inf"
        return out
    diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
    norms = float(np.linalg.norm(ref) * np.linalg.norm(got))
    cosine = float(ref @ got / norms) if norms > 0 else 1.0
    tolerance = rel * max(_FLOOR, float(np.max(np.abs(ref))) if ref.size else 1.0)
    out.update(max_abs_diff=diff, cosine=cosine, tolerance=tolerance,
               passed=diff <= tolerance and cosine >= 1.0 - rel)
    if not out["passed"]:
        out["message"] = (f"max |diff| {diff:.3g} (tolerance {tolerance:.3g}), cosine "
                          f"{cosine:.6f} (at least {1.0 - rel:.6f} needed)")
    return out


def check_parity(path: Path, source: "TFSource", proto, transpose: bool,
            input_size: tuple[int, int] | None) -> dict[str, Any]:
    """Original vs converted on seeded random batches; UnsupportedModel when they differ."""
    import onnxruntime as ort

    shape = _parity_shape(path, source, input_size)
    rng = np.random.default_rng(PARITY_SEED)
    batches = [rng.standard_normal(shape).astype(np.float32) for _ in range(PARITY_SAMPLES)]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feed_name = session.get_inputs()[0].name
    references = [source.reference(x) for x in batches]
    outputs = [session.run(None, {feed_name: x.transpose(0, 3, 1, 2) if transpose else x})
               for x in batches]
    quantized = any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    result = compare(references, outputs, *((PARITY_REL_INT8, PARITY_WHY_INT8) if quantized
                                           else (PARITY_REL, PARITY_WHY)))
    if not result["passed"]:
        raise UnsupportedModel(f"the ONNX conversion does not match the {LABELS[source.kind]} "
                               f"model: {result['message']}", path=path)
    return {**result, "batch_shape": list(shape), "reference": source.framework,
            "onnx_runtime": f"onnxruntime {ort.__version__}", "seed": PARITY_SEED}


def _parity_shape(path: Path, source: "TFSource", input_size) -> tuple[int, ...]:
    batch, *rest = source.input_shape
    spatial = (0, 1) if source.layout == "NHWC" else (1, 2)
    dims = list(rest)
    if input_size is not None and all(dims[i] is None for i in spatial):
        for i, size in zip(spatial, input_size):
            dims[i] = int(size)
    if any(d is None for d in dims):
        raise UnsupportedModel(f"input {source.input_name!r} has dynamic size {list(rest)}; "
                               "pass --input-size HxW", path=path)
    return (batch or 2, *dims)
