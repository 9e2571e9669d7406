"""NNCF, the INT8 engine for OpenVINO (int8_static and mixed_precision with engine=nncf).

Why NNCF: it is OpenVINO's own post-training quantizer; it places FakeQuantize ops where the
CPU plugin's low-precision transformations turn them into int8 kernels, and applies its
fast bias correction. We choose its preset and range estimator and feed it our data.

The model is the same pre-processed ONNX graph ORT quantizes (`_ort_quant.prepare`:
BatchNorm folded), converted with `openvino.convert_model`, so layer names match those of
`infertune sensitivity`: OpenVINO names a converted op after its ONNX node, with suffixes
such as `/WithoutBiases` for a Conv whose bias became a separate Add. The result is saved as
IR (.xml + .bin, FP32 weights where not quantized) and returned as an "openvino" handle.
"""
from __future__ import annotations

import contextlib
import io
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UnsupportedModel
from ..types import ModelHandle
from .base import PassContext, PassResult, workfile

WEIGHTED_OV_OPS = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")


def quantize_nncf(model: ModelHandle, config: Any, ctx: PassContext,
                  keep: Sequence[dict[str, str]]) -> PassResult:
    """nncf.quantize on the OpenVINO model of `model` (an ONNX handle); IR out."""
    import openvino as ov

    from ._ort_quant import calibration_x, prepare

    prepped, prep = prepare(model, ctx)
    ov_model = ov.convert_model(str(prepped))
    names = ov_names(ov_model, [k["layer"] for k in keep])
    x = calibration_x(ctx, config.samples)
    start = time.perf_counter()
    quantized = run_nncf(ov_model, x, config, names)
    out = workfile(ctx, Path(str(model.path)).stem[:50] + ".nncf-int8", ".xml")
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    details = {"engine": "nncf.quantize (OpenVINO backend)", "representation": "FakeQuantize IR",
               "preset": config.preset, "method": config.method,
               "per_channel": config.per_channel, "calibration_samples": len(x),
               "seconds": round(time.perf_counter() - start, 2), "preprocess": prep,
               **layer_report(quantized, keep, names)}
    meta = {**model.meta, "precision": "int8", "quantized_by": "nncf"}
    handle = ModelHandle(format="openvino", path=str(out), input_spec=model.input_spec,
                         name=model.name, source=model.source, meta=meta)
    return PassResult(handle, True, None, details)


def ov_names(ov_model, onnx_names: Sequence[str]) -> dict[str, list[str]]:
    """ONNX node name -> the weighted OpenVINO ops converted from it."""
    ops = [op.get_friendly_name() for op in ov_model.get_ordered_ops()
           if op.get_type_name() in WEIGHTED_OV_OPS]
    found = {n: [o for o in ops if o == n or o.startswith(n + "/")] for n in onnx_names}
    missing = [n for n, hits in found.items() if not hits]
    if missing:
        raise UnsupportedModel(f"no OpenVINO op converted from ONNX node(s) "
                               f"{', '.join(missing)}: cannot keep them float with NNCF")
    return found


def run_nncf(ov_model, x: np.ndarray, config: Any, names: dict[str, list[str]]):
    """nncf.quantize with the config's preset, range estimator, per-channel choice, scope."""
    import nncf
    from nncf.quantization.advanced_parameters import (AdvancedQuantizationParameters,
                                                       QuantizationParameters)
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    estimator = {"minmax": RangeEstimatorParametersSet.MINMAX,
                 "mean_minmax": RangeEstimatorParametersSet.MEAN_MINMAX,
                 "percentile": RangeEstimatorParametersSet.MEAN_QUANTILE}[config.method]
    advanced = AdvancedQuantizationParameters(
        activations_range_estimator_params=estimator,
        weights_quantization_params=QuantizationParameters(per_channel=config.per_channel))
    scope = [o for ops in names.values() for o in ops]
    dataset = nncf.Dataset([x[i:i + 1] for i in range(len(x))])
    try:
        with _quiet():
            return nncf.quantize(ov_model, dataset, preset=nncf.QuantizationPreset(config.preset),
                                 subset_size=len(x), advanced_parameters=advanced,
                                 ignored_scope=nncf.IgnoredScope(names=scope) if scope else None)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise UnsupportedModel(f"NNCF failed: {type(exc).__name__}: "
                               f"{lines[0][:300] if lines else ''}") from None


@contextlib.contextmanager
def _quiet():
    """NNCF logs INFO lines and draws progress bars on stdout: both go away (stdout must
    stay pure JSON with --json); warnings and errors still reach stderr."""
    import nncf

    nncf.set_log_level(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def layer_report(quantized, keep: Sequence[dict[str, str]],
                 names: dict[str, list[str]]) -> dict[str, Any]:
    """Weighted ops with int8 weights, kept ones with reasons, FakeQuantize count. Layers are
    named as in the ONNX graph (OpenVINO's `/WithoutBiases` suffix dropped)."""
    ops = [op for op in quantized.get_ordered_ops() if op.get_type_name() in WEIGHTED_OV_OPS]
    kept_ov = {o for k in keep for o in names.get(k["layer"], [])}
    done = [_onnx_name(op) for op in ops if _int8_weights(op.input_value(1).get_node())]
    kept = [{"layer": k["layer"], "reason": k["reason"]} for k in keep]
    kept += [{"layer": _onnx_name(op), "reason": "NNCF left it float"} for op in ops
             if _onnx_name(op) not in done and op.get_friendly_name() not in kept_ov]
    fq = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ordered_ops())
    return {"layers": len(ops), "quantized": done, "kept_float": kept, "fake_quantize": fq}


def _onnx_name(op) -> str:
    return op.get_friendly_name().removesuffix("/WithoutBiases")


def _int8_weights(node, depth: int = 5) -> bool:
    """Whether a weight input is int8 data: NNCF stores quantized weights as an i8/u8
    Constant followed by Convert, Subtract and Multiply (or behind a FakeQuantize)."""
    kind = node.get_type_name()
    if kind == "FakeQuantize":
        return True
    if kind == "Constant":
        return node.get_element_type().get_type_name() in ("i8", "u8")
    if depth == 0 or node.get_input_size() == 0:
        return False
    return any(_int8_weights(node.input_value(i).get_node(), depth - 1)
               for i in range(node.get_input_size()))
