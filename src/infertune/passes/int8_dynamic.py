"""`int8_dynamic`: int8 weights, activations quantized at run time (no calibration data).

Engines, each the runtime's own quantizer:
- `ort` (default): ONNX Runtime's `quantize_dynamic` on the pre-processed graph (BatchNorm
  folded first, as for int8_static): Conv becomes DynamicQuantizeLinear + ConvInteger,
  MatMul (and Gemm) become MatMulInteger; what stays float is reported. Measured on Darknet19_448 here: ORT's dynamic INT8 is *slower*
  than FP32 (429 vs 107 ms): ConvInteger has no fused requantisation and quantizes every
  activation at run time. The pass does what it is asked; the benchmark shows the cost.
- `torch`: `torch.ao.quantization.quantize_dynamic` (still in torch 2.13, deprecated), which
  covers nn.Linear only; convolutions stay float. Its packed weights cannot be saved with
  torch.export, so only the torchscript runtime (tracing) can build the result.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Literal

from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass
from ._checks import check_literals

DYNAMIC_OPS = ("Conv", "MatMul")


@dataclass(frozen=True)
class Int8DynamicConfig:
    """Dynamic INT8.

    Attributes:
        engine: ort (ONNX Runtime, integer ops) or torch (nn.Linear only).
        per_channel: one weight scale per output channel (engine ort).
    """

    engine: Literal["ort", "torch"] = "ort"
    per_channel: bool = False

    def __post_init__(self) -> None:
        check_literals(self)


@register_pass("int8_dynamic", config=Int8DynamicConfig, accepts=("torch", "onnx"),
               description="dynamic INT8: int8 weights, activations quantized at run time "
                           "(ORT ConvInteger/MatMulInteger, torch Linear)")
def apply(model: ModelHandle, config: Int8DynamicConfig, ctx: PassContext) -> PassResult:
    """Quantizes weights to int8; the input is untouched."""
    if config.engine == "torch":
        return quantize_torch_dynamic(model)
    return quantize_ort_dynamic(model, config, ctx)


def quantize_ort_dynamic(model: ModelHandle, config: Int8DynamicConfig,
                         ctx: PassContext) -> PassResult:
    from . import _ort_quant as q
    from .int8_static import as_onnx, layer_report

    source, exported = as_onnx(model, ctx)
    prepped, prep = q.prepare(source, ctx)
    layers = q.weighted_layers(prepped)
    if not layers:
        return PassResult(model, False, "no Conv, Gemm or MatMul layer to quantize")
    out = q.new_file(ctx, source.path, "int8dyn")
    start = time.perf_counter()
    q.quantize_dyn(prepped, out, per_channel=config.per_channel, exclude=(),
                   op_types=DYNAMIC_OPS)
    summary = q.quantized_summary(out, layers)
    details = {"engine": "onnxruntime.quantization.quantize_dynamic", "weights": "uint8",
               "activations": "uint8, quantized per call", "per_channel": config.per_channel,
               "seconds": round(time.perf_counter() - start, 2), "preprocess": prep,
               "integer_ops": summary["integer_ops"], "exported_to_onnx": exported,
               **layer_report(layers, summary, [])}
    meta = {**source.meta, "precision": "int8_dynamic", "quantized_by": "onnxruntime"}
    handle = ModelHandle(format="onnx", path=str(out), input_spec=source.input_spec,
                         name=source.name, source=source.source, meta=meta)
    return PassResult(handle, True, None, details)


def quantize_torch_dynamic(model: ModelHandle) -> PassResult:
    import copy
    import warnings

    import torch

    if model.format != "torch":
        return PassResult(model, False, f"engine torch quantizes torch models; this one is "
                                        f"{model.format}")
    linears = [n for n, m in model.obj.named_modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        return PassResult(model, False, "torch's dynamic quantization covers nn.Linear only, "
                                        "and this model has none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of torchao; still works
        module = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model.obj).eval(),
                                                        {torch.nn.Linear}, dtype=torch.qint8)
    convs = [n for n, m in model.obj.named_modules() if isinstance(m, torch.nn.Conv2d)]
    details = {"engine": "torch.ao.quantization.quantize_dynamic", "quantized": linears,
               "kept_float": [{"layer": n, "reason": "torch's dynamic quantization has no "
                                                     "convolution"} for n in convs],
               "note": "packed int8 Linear weights: only the torchscript runtime can build it"}
    meta = {**model.meta, "precision": "int8_dynamic", "quantized_by": "torch"}
    return PassResult(dataclasses.replace(model, obj=module, meta=meta), True, None, details)
