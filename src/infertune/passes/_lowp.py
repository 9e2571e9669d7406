"""FP16 and BF16 for each runtime; the fp16 and bf16 passes are this module with a dtype.

How the precision reaches each runtime (`target`), and why:
- onnxruntime: the graph converted to float16 by onnxconverter-common (the converter ONNX
  Runtime's own docs point to), inputs and outputs kept float32, ops on its default block
  list (and `keep_float_ops`) kept float32 behind Casts. ORT's CPU provider inserts Casts
  around float16 ops it has no kernel for: the report counts the Casts ORT added, because
  then the model runs in float32 with extra conversions (the measurement shows the cost).
  BF16 does not apply: ORT's CPU provider has no bfloat16 convolution or matmul kernels.
- openvino: the model is left as it is and `meta["inference_precision"]` asks the CPU plugin
  for f16/bf16 (INFERENCE_PRECISION_HINT; runtimes/openvino.py stores it in the IR). That is
  how OpenVINO does low precision: it converts at compile time, per op, where it can.
- torch: a float16/bfloat16 copy of the module behind float32 I/O (_torch_cast.py says why).
  Such a module runs on the torch runtimes (torch, torchscript, compile); OpenVINO takes it
  as its float32 copy with the matching inference precision (the same model: see
  CastIO.float32_module); ONNX Runtime and TensorRT refuse it with the reason. Never is it
  exported to a bfloat16/float16-typed ONNX: ORT has no bfloat16 CPU kernels, and the
  export would take bfloat16 inputs.
- auto: torch for a torch model, onnxruntime for an ONNX model. The pass does not know the
  runtime, so a plan that targets OpenVINO should say target=openvino.
Where the CPU has no native support (no AVX512-FP16/AMX for fp16; no AVX512-BF16/AMX for
bf16), the pass still applies and says so: the runtimes emulate, and latency shows it.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Literal

from ..machine import native_support
from ..types import ModelHandle
from .base import PassContext, PassResult

Target = Literal["auto", "onnxruntime", "openvino", "torch"]
OV_PRECISION = {"fp16": "f16", "bf16": "bf16"}


def apply_low_precision(model: ModelHandle, target: str, ctx: PassContext, precision: str,
                        keep_float_ops: tuple[str, ...] = ()) -> PassResult:
    """The model in `precision` ("fp16" | "bf16") for `target` (see the module docstring)."""
    if target == "auto":
        target = "openvino" if model.format == "openvino" else \
            ("torch" if model.format == "torch" else "onnxruntime")
    if model.format == "openvino" and target != "openvino":
        return PassResult(model, False, f"an OpenVINO IR runs on OpenVINO only; use "
                                        f"target=openvino, not {target}")
    if target == "openvino":
        result = for_openvino(model, precision)
    elif target == "torch":
        result = for_torch(model, precision)
    else:
        result = for_onnxruntime(model, precision, ctx, keep_float_ops)
    details = {"target": target, "precision": precision, **native_support(precision),
               **result.details}
    return dataclasses.replace(result, details=details)


def for_openvino(model: ModelHandle, precision: str) -> PassResult:
    """The same model, with the inference precision OpenVINO's CPU plugin is asked for."""
    meta = {**model.meta, "inference_precision": OV_PRECISION[precision], "precision": precision}
    return PassResult(dataclasses.replace(model, meta=meta), True, None,
                      {"how": f"INFERENCE_PRECISION_HINT={OV_PRECISION[precision]} at compile "
                              "time (weights stay float32 in the IR)"})


def for_torch(model: ModelHandle, precision: str) -> PassResult:
    if model.format != "torch":
        return PassResult(model, False, f"target torch needs a torch model; this one is "
                                        f"{model.format} (use target onnxruntime or openvino)")
    from . import _torch_cast

    if _torch_cast.is_script(model.obj):
        return PassResult(model, False, "a TorchScript module cannot be converted and wrapped "
                                        "(torch.export, which the torch runtimes use, refuses it)")
    module = _torch_cast.converted(model.obj, precision)
    # "torch_precision" tells the runtimes that the module itself is cast: the torch ones run
    # it as it is, OpenVINO compiles its float32 copy with the matching hint, the ONNX ones
    # refuse it (runtimes/base.py, Runtime.incompatible).
    meta = {**model.meta, "precision": precision, "torch_precision": precision}
    return PassResult(dataclasses.replace(model, obj=module, meta=meta), True, None,
                      {"how": f"module converted to {_torch_cast.DTYPES[precision]}, "
                              "float32 inputs and outputs"})


def for_onnxruntime(model: ModelHandle, precision: str, ctx: PassContext,
                    keep_float_ops: tuple[str, ...]) -> PassResult:
    if precision == "bf16":
        return PassResult(model, False, "ONNX Runtime's CPU provider has no bfloat16 "
                                        "convolution or matmul kernels; use target openvino "
                                        "or torch")
    import importlib.util

    from .int8_static import as_onnx

    if importlib.util.find_spec("onnxconverter_common") is None:
        return PassResult(model, False, "target onnxruntime needs onnxconverter-common: "
                                        "pip install onnxconverter-common")
    source, exported = as_onnx(model, ctx)
    out, details = convert_onnx_fp16(source, ctx, keep_float_ops)
    meta = {**source.meta, "precision": "fp16"}
    handle = ModelHandle(format="onnx", path=str(out), input_spec=source.input_spec,
                         name=source.name, source=source.source, meta=meta)
    return PassResult(handle, True, None, {**details, "exported_to_onnx": exported})


def convert_onnx_fp16(model: ModelHandle, ctx: PassContext,
                      keep_float_ops: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """onnxconverter-common's float16 conversion with float32 I/O; the file and a report."""
    import onnx
    from onnxconverter_common import float16

    from ._ort_quant import new_file, op_counts

    proto = onnx.load(str(model.path))
    block = list(float16.DEFAULT_OP_BLOCK_LIST) + list(keep_float_ops)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = float16.convert_float_to_float16(proto, keep_io_types=True,
                                                     op_block_list=block)
    # The converter clamps constants beyond +-1e4 (one warning each): Darknet's -FLT_MAX
    # max-pool padding becomes -1e4, still below any activation, so the maximum is unchanged.
    clamped = sum("truncated" in str(w.message) for w in caught)
    out = new_file(ctx, model.path, "fp16")
    onnx.save(converted, str(out))
    counts = op_counts(converted)
    kept = sorted({n.op_type for n in proto.graph.node if n.op_type in set(block)})
    return out, {"how": "onnxconverter-common float16 conversion, float32 inputs and outputs",
                 "casts": counts.get("Cast", 0) - op_counts(proto).get("Cast", 0),
                 "kept_float_ops": kept, "constants_clamped_to_1e4": clamped,
                 "ort_fallback_casts": ort_added_casts(out)}


def ort_added_casts(path: Any) -> int | None:
    """How many Casts ORT's CPU provider adds when it loads the model (one pair per float16
    op it has no kernel for, which then runs in float32); None if it cannot tell."""
    import tempfile
    from pathlib import Path

    import onnx
    import onnxruntime as ort

    from ._ort_quant import op_counts

    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(optimized)
        try:
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            after = op_counts(onnx.load(str(optimized), load_external_data=False))
        except Exception:
            return None
    before = op_counts(onnx.load(str(path), load_external_data=False))
    return max(0, after.get("Cast", 0) - before.get("Cast", 0))
