"""What precision a built artifact really runs in, read from the artifact or the runtime
rather than from the recipe that asked for it.

A candidate is labelled by its recipe ("int8_static → openvino"); this module checks the
label against what was built, so that a quantizer that silently did nothing, or a runtime
that quietly computes in another precision, never reaches the report under a false name:

* ONNX (onnxruntime): the graph's operators — Q/DQ pairs or integer kernels mean INT8; a
  float16 graph means FP16; otherwise FP32.
* OpenVINO: the session the measurements open (same compile options), whose execution
  graph says per node which precision the CPU plugin chose (`runtimePrecision`): INT8 when
  any node runs in i8/u8, else the compiled inference precision.
* torch, torchscript, compile: torch keeps no per-operator precision record, so the passes'
  own reports decide (every step must have applied), and the note says so.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from ..runtimes.openvino import OpenVinoSession

INT8_ONNX_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                 "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}
# OpenVINO's names for the precisions its CPU plugin computes in.
OV_PRECISIONS = {"i8": "int8", "u8": "int8", "bf16": "bf16", "f16": "fp16", "f32": "fp32"}


def ran_precision(runtime: str, artifact: str, requested: str,
                  options: dict[str, Any] | None = None) -> tuple[str | None, str]:
    """(precision that runs, how it was found); precision None when it cannot be read."""
    if runtime in ("onnxruntime", "tensorrt") and artifact.endswith(".onnx"):
        return _onnx(artifact)
    if runtime == "openvino" and artifact.endswith(".xml"):
        return _openvino(artifact, options or {})
    return None, (f"{runtime} does not report per-operator precision; '{requested}' is what "
                  "the recipe asked for and every step reported applied")


def _onnx(path: str) -> tuple[str, str]:
    import onnx

    model = onnx.load(path, load_external_data=False)
    ops = Counter(n.op_type for n in model.graph.node)
    int8 = sum(n for op, n in ops.items() if op in INT8_ONNX_OPS)
    if int8:
        return "int8", f"ONNX graph: {int8} quantization operators ({_top(ops, INT8_ONNX_OPS)})"
    halves = sum(1 for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16)
    if halves:
        return "fp16", f"ONNX graph: {halves} float16 weight tensors"
    return "fp32", "ONNX graph: no quantization operator, no float16 weights"


def _top(ops: Counter, names: set[str]) -> str:
    return ", ".join(f"{op} ×{n}" for op, n in ops.most_common() if op in names)


def _openvino(path: str, options: dict[str, Any]) -> tuple[str, str]:
    """Opened as the measurements open it (runtimes.openvino: same compile options), then
    read from the plugin's execution graph."""
    session = OpenVinoSession(path, options)
    try:
        info = session.describe().get("precision") or {}
    finally:
        session.close()
    ops = {str(k).lower(): int(v) for k, v in (info.get("ops_by_precision") or {}).items()}
    note = info.get("summary") or "OpenVINO reported no per-op precision"
    if ops.get("i8") or ops.get("u8"):
        return "int8", note
    return OV_PRECISIONS.get(str(info.get("ran", "f32")).lower(), "fp32"), note


def mismatch(requested: str, ran: str | None) -> str | None:
    """Why `ran` does not honour `requested` (None when it does, or when unknown)."""
    if ran is None:
        return None
    wants = {"int8": "int8", "int8-dynamic": "int8", "mixed": "int8", "bf16": "bf16",
             "fp16": "fp16"}.get(requested)
    if wants is None or ran == wants:
        return None
    return f"{requested} was asked for, but the built artifact runs in {ran}"
