"""PyTorch's PT2E static INT8, the engine for the torch runtimes (int8_static engine=torch).

Why PT2E with the X86InductorQuantizer: it is PyTorch's own path to INT8 on x86 CPUs: the
model is captured with torch.export, observers calibrate it, and the converted program holds
quantize/dequantize ops around each conv and linear that torch.compile's inductor backend
(freezing on, as our `compile` runtime runs it) lowers to oneDNN int8 kernels. Eager mode
runs the same program op by op in float (a reference of the numerics, not fast).

What torch 2.13 offers, tried here: `torch.ao.quantization.quantize_pt2e` and
`torch.ao.quantization.quantizer` are gone from torch 2.13 (PT2E moved to torchao, package
`torchao.quantization.pt2e`, the same code). The FX graph mode that torch 2.13 still ships
(`torch.ao.quantization.quantize_fx`) does quantize and runs fbgemm int8 kernels in eager
mode, but its packed weights cannot be saved with torch.export, so neither the torch nor the
compile runtime (both start from a torch.export program) could build it. Hence torchao's
PT2E when torchao is installed, and a "does not apply" result naming it when it is not.

Calibration: `method=minmax` swaps the quantizer's default HistogramObserver for a
MinMaxObserver on activations; weights are per-channel min-max (the quantizer's only choice).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import warnings
from typing import Any, Iterator

from ..types import ModelHandle
from .base import PassContext, PassResult

NO_TORCHAO = ("engine torch needs PT2E, which torch 2.13 no longer ships in torch.ao "
              "(moved to torchao): pip install torchao")
_CALIB_BATCH = 8


def quantize_torch(model: ModelHandle, config: Any, ctx: PassContext) -> PassResult:
    """PT2E quantization of a torch model with calibration on ctx.calibration."""
    import torch

    if model.format != "torch":
        return PassResult(model, False, "engine torch quantizes torch models; this one is "
                                        f"{model.format} (use engine ort or nncf)")
    if isinstance(model.obj, torch.jit.ScriptModule):
        return PassResult(model, False, "a TorchScript module cannot be captured by "
                                        "torch.export (PT2E needs an nn.Module)")
    try:
        with _quiet():
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError:
        return PassResult(model, False, NO_TORCHAO)
    module, folded = _folded_copy(model.obj)
    try:
        with _quiet():
            prepared = prepare_pt2e(capture(module, model.input_spec), quantizer(config.method))
            samples = calibrate(prepared, ctx, config.samples)
            converted = convert_pt2e(prepared)
    except Exception as exc:  # a model PT2E cannot capture or quantize: a result, not a crash
        lines = str(exc).strip().splitlines()
        return PassResult(model, False, f"PT2E failed: {type(exc).__name__}: "
                                        f"{lines[0][:300] if lines else ''}")
    meta = {**model.meta, "precision": "int8", "quantized_by": "torchao.pt2e"}
    details = {"engine": "torchao PT2E, X86InductorQuantizer", "method": config.method,
               "per_channel": True, "activations": "uint8 (asymmetric)", "weights": "int8",
               "calibration_samples": samples, "bn_folded_first": folded,
               **layer_report(converted),
               "note": "fast under the compile runtime (inductor lowers q/dq to int8 kernels); "
                       "eager runs it op by op in float"}
    return PassResult(dataclasses.replace(model, obj=converted, meta=meta), True, None, details)


def _folded_copy(module) -> tuple[Any, int]:
    """A copy with BatchNorm folded into the convs by our fold_bn pass first: PT2E's own
    conv-BN fusion needs plain BatchNorm2d buffers, and Darknet's CPU-convention BN computes
    its denominator (it fails with "Expected get_attr node")."""
    from .fold_bn import fold_module

    net = copy.deepcopy(module).eval()
    folded, _skipped, _how = fold_module(net)
    return net, len(folded)


def capture(module, spec):
    """torch.export of `module` with a dynamic batch dimension, as a GraphModule."""
    import torch

    example = torch.randn((2, *spec.chw), generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(module, (example,), dynamic_shapes=({0: batch},)).module()


def quantizer(method: str):
    """The X86InductorQuantizer with its default config (MinMax activations for minmax)."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e import MinMaxObserver

    config = xiq.get_default_x86_inductor_quantization_config()
    if method == "minmax":
        act = dataclasses.replace(config.input_activation,
                                  observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
        config = dataclasses.replace(config, input_activation=act,
                                     output_activation=act if config.output_activation else None)
    q = xiq.X86InductorQuantizer()
    q.set_global(config)
    return q


def calibrate(prepared, ctx: PassContext, samples: int) -> int:
    """Runs the observed model on the first `samples` calibration inputs."""
    import numpy as np
    import torch

    x = np.asarray(ctx.calibration.x[:samples], dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(x), _CALIB_BATCH):
            prepared(torch.from_numpy(x[i:i + _CALIB_BATCH]))
    return len(x)


def layer_report(converted) -> dict[str, Any]:
    """Convs and linears whose weight comes through a dequantize op, and the q/dq counts."""
    targets = {n: str(n.target) for n in converted.graph.nodes if n.op == "call_function"}
    weighted = [n for n, t in targets.items() if t.startswith(("aten.conv", "aten.linear"))]
    done = [n for n in weighted if len(n.args) > 1 and "dequantize" in targets.get(n.args[1], "")]
    counts = {"quantize": sum("quantized_decomposed.quantize" in t for t in targets.values()),
              "dequantize": sum("quantized_decomposed.dequantize" in t for t in targets.values())}
    return {"layers": len(weighted), "quantized": [_module_name(n) for n in done], "qdq": counts,
            "kept_float": [{"layer": _module_name(n), "reason": "the quantizer left it float"}
                           for n in weighted if n not in done]}


def _module_name(node) -> str:
    """The torch module a captured op came from ("layers.0.conv"), else the node's name."""
    stack = node.meta.get("nn_module_stack") or {}
    return str(list(stack.values())[-1][0]) if stack else node.name


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torchao logs a warning per optional CUDA extension it cannot load on a CPU build;
    torch warns about deprecated pytree registrations. Neither concerns a CPU user."""
    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
