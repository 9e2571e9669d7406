"""`int8_static`: post-training static INT8 with calibration on the user's data.

Three engines, each the quantizer of the runtime that runs its result (we write none):
- `ort` (default): ONNX Runtime's `quantize_static`, QDQ ONNX, S8S8, per-channel weights,
  calibration min-max / percentile / entropy (settings and why: `_ort_quant.py`). The
  result runs on ONNX Runtime, and OpenVINO reads the same QDQ file.
- `nncf`: NNCF's `quantize` on the OpenVINO model, saved as IR (`_nncf_quant.py`). The
  result is an "openvino" handle: only the OpenVINO runtime can run it.
- `torch`: PT2E with the X86InductorQuantizer for the torch runtimes (`_torch_quant.py`).
  torch 2.13 no longer ships `torch.ao.quantization.quantize_pt2e`; the same code lives in
  torchao, and without torchao this engine returns the model unchanged with that reason.

A torch model given to the ort or nncf engine is exported to ONNX first (the report says so).
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from ..types import ModelHandle
from ._checks import check_literals
from .base import PassContext, PassResult, register_pass

Method = Literal["minmax", "mean_minmax", "percentile", "entropy"]
OrtMethod = Literal["minmax", "percentile", "entropy"]  # ONNX Runtime's calibrators
Engine = Literal["ort", "nncf", "torch"]
# What each engine can calibrate with (config errors otherwise, with this list).
ENGINE_METHODS = {"ort": ("minmax", "percentile", "entropy"),
                  "nncf": ("minmax", "mean_minmax", "percentile"), "torch": ("minmax",)}


@dataclass(frozen=True)
class Int8StaticConfig:
    """Static INT8 post-training quantization.

    Attributes:
        method: activation range calibration: minmax (the extremes over all samples),
            mean_minmax (NNCF only: the mean over samples of each one's min and max, NNCF's
            MEAN_MINMAX estimator for every activation), percentile (ORT: 99.999th; NNCF: mean
            of per-batch 1e-4 quantiles), entropy (KL divergence; ORT only).
        per_channel: one weight scale per output channel (True) or one per tensor.
        engine: ort (ONNX Runtime, QDQ ONNX), nncf (NNCF, OpenVINO IR), torch (PT2E).
        activations: int8 (symmetric, ORT's default) or uint8 (asymmetric); engine ort only.
        preset: NNCF's preset: performance (symmetric) or mixed (asymmetric activations).
        samples: calibration samples used (the first N of the calibration data).
        reduce_range: 7-bit weights (ONNX Runtime's reduce_range): auto (on exactly where
            this CPU's INT8 sums saturate, x86 without VNNI/AMX; see `_ort_quant`), on, off;
            engine ort only.
        softmax: float (default: kept float, see `_ort_quant`) or int8 (quantized with
            ORT's fixed [0, 1] range where the calibration data show its range allows;
            otherwise the pass does not apply and says why); engine ort only.
    """

    method: Method = "minmax"
    per_channel: bool = True
    engine: Engine = "ort"
    activations: Literal["int8", "uint8"] = "int8"
    preset: Literal["performance", "mixed"] = "performance"
    samples: int = 128
    softmax: Literal["float", "int8"] = "float"
    reduce_range: Literal["auto", "on", "off"] = "auto"

    def __post_init__(self) -> None:
        check_literals(self)
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, not {self.samples}")
        if self.method not in ENGINE_METHODS[self.engine]:
            *first, last = ENGINE_METHODS[self.engine]
            raise ValueError(f"engine {self.engine} calibrates with "
                             f"{', '.join(first) + ' or ' if first else ''}{last}, "
                             f"not {self.method}")
        if self.activations != "int8" and self.engine != "ort":
            raise ValueError("activations applies to engine ort only")
        if self.softmax != "float" and self.engine != "ort":
            raise ValueError("softmax applies to engine ort only")
        if self.reduce_range != "auto" and self.engine != "ort":
            raise ValueError("reduce_range applies to engine ort only")
        if self.engine == "torch" and not self.per_channel:
            raise ValueError("engine torch (X86InductorQuantizer) quantizes weights per "
                             "channel only")


@register_pass("int8_static", config=Int8StaticConfig, accepts=("torch", "onnx"),
               needs_data=True,
               description="static INT8 with calibration (ORT QDQ, NNCF for OpenVINO, "
                           "PT2E for torch)")
def apply(model: ModelHandle, config: Int8StaticConfig, ctx: PassContext) -> PassResult:
    """Quantizes `model` with the configured engine; the input is untouched."""
    return quantize(model, config, ctx, keep=())


def quantize(model: ModelHandle, config: Int8StaticConfig, ctx: PassContext,
             keep: typing.Sequence[dict[str, str]]) -> PassResult:
    """The engine's result; `keep` = layers left float ({"layer", "reason"}), for
    mixed_precision (names are the pre-processed ONNX graph's node names)."""
    if config.engine == "torch":
        from ._torch_quant import quantize_torch

        return quantize_torch(model, config, ctx)
    missing = _missing(config.engine)
    if missing:
        return PassResult(model, False, missing)
    source, exported = as_onnx(model, ctx)
    if config.engine == "nncf":
        from ._nncf_quant import quantize_nncf

        result = quantize_nncf(source, config, ctx, keep)
    else:
        result = quantize_ort(source, config, ctx, keep)
    if not result.applied:
        return PassResult(model, False, result.reason, result.details)
    return PassResult(result.model, True, None, {**result.details, "exported_to_onnx": exported})


def _missing(engine: str) -> str | None:
    """Why the engine cannot run here (its library is not installed), or None."""
    import importlib.util

    needs = {"ort": ("onnxruntime",), "nncf": ("nncf", "openvino")}[engine]
    absent = [m for m in needs if importlib.util.find_spec(m) is None]
    return f"engine {engine} needs {', '.join(absent)}: pip install {' '.join(absent)}" \
        if absent else None


def as_onnx(model: ModelHandle, ctx: PassContext) -> tuple[ModelHandle, bool]:
    """The model as an ONNX handle (exported into the workdir when it is a torch model)."""
    if model.format == "onnx":
        return model, False
    from .pipeline import to_onnx

    return to_onnx(model, ctx), True


def quantize_ort(model: ModelHandle, config: Int8StaticConfig, ctx: PassContext,
                 keep: typing.Sequence[dict[str, str]]) -> PassResult:
    """ONNX Runtime's quantize_static on the pre-processed model (see _ort_quant)."""
    import time

    from . import _ort_quant as q

    prepped, prep = q.prepare(model, ctx)
    layers = q.weighted_layers(prepped)
    if not layers:
        return PassResult(model, False, "no Conv, Gemm or MatMul layer to quantize")
    quantize_softmax = config.softmax == "int8"
    kept = [*keep, *q.default_float(prepped, quantize_softmax)]
    reduced, reduced_why = q.reduce_range(config.reduce_range)
    settings = q.OrtSettings(config.method, config.per_channel, config.activations,
                             config.samples, reduced)
    x = q.calibration_x(ctx, config.samples)
    if quantize_softmax:
        why = q.softmax_refusal(prepped, x, config.activations)
        if why:
            return PassResult(model, False, why)
    out = q.new_file(ctx, model.path, "int8")
    start = time.perf_counter()
    q.quantize_qdq(prepped, out, x, settings, ctx, exclude=[k["layer"] for k in kept])
    summary = q.quantized_summary(out, layers)
    details = {"engine": "onnxruntime.quantization.quantize_static", "representation": "QDQ",
               "weights": "int8", "activations": config.activations, "method": config.method,
               "per_channel": config.per_channel, "softmax": config.softmax,
               "weight_bits": 7 if reduced else 8, "weight_bits_why": reduced_why,
               "calibration_samples": len(x),
               "seconds": round(time.perf_counter() - start, 2), "preprocess": prep,
               **layer_report(layers, summary, kept)}
    meta = {**model.meta, "precision": "int8", "quantized_by": "onnxruntime"}
    return PassResult(_derived(model, out, meta), True, None, details)


def layer_report(layers: list[dict[str, str]], summary: dict[str, Any],
                 kept: typing.Sequence[dict[str, str]]) -> dict[str, Any]:
    """Quantized layers, layers kept float with reasons, Q/DQ counts."""
    done = set(summary["quantized_layers"])
    reasons = {k["layer"]: k["reason"] for k in kept}
    kept_float = [{"layer": k["layer"], "reason": k["reason"]} for k in kept]
    kept_float += [{"layer": l["layer"], "reason": "the quantizer left it float"}
                   for l in layers if l["layer"] not in done and l["layer"] not in reasons]
    return {"layers": len(layers), "quantized": [l["layer"] for l in layers if l["layer"] in done],
            "kept_float": kept_float,
            "qdq": {"QuantizeLinear": summary["quantize_linear"],
                    "DequantizeLinear": summary["dequantize_linear"]}}


def _derived(model: ModelHandle, path: Any, meta: dict[str, Any]) -> ModelHandle:
    return ModelHandle(format="onnx", path=str(path), input_spec=model.input_spec,
                       name=model.name, source=model.source, meta=meta)
