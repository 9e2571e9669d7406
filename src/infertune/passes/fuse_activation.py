"""`fuse_activation`: vertical fusion, conv (+BN) + activation, done where the runtime gains.

What "fused" means differs per format, and the report says which one was done:

- ONNX (every exported runtime): ONNX Runtime's own graph optimizer, run offline at the
  EXTENDED level, folds Conv+BatchNormalization and turns Conv→Relu/LeakyRelu/Sigmoid/Clip...
  into one `com.microsoft.FusedConv` node, whose CPU kernel applies the activation to each
  output block while it is still in cache (one pass over the output instead of two). We use
  ORT as the engine rather than a hand-written rewrite because it is the runtime that will
  execute the node, so it only fuses what its kernels support. The saved graph holds
  Microsoft-domain ops that only ONNX Runtime runs: the handle's meta gets
  `runtime_only="onnxruntime"`, and other runtimes refuse it with that reason. ORT applies
  the same fusion itself when it opens a model at its default (ALL) level, so the offline
  graph is not faster there (Darknet19 at 224×224, 2 threads: 1.01x, median of 5
  interleaved rounds); it shows what fuses and saves that work at session start.
- torch: BatchNorm is folded first (as `fold_bn`), then each conv→activation pair whose
  conv output goes nowhere else becomes one `ConvAct` module that applies the activation in
  place on the conv's output. Eager PyTorch has no fused conv+activation kernel for
  nn.Conv2d, so this saves one output-sized allocation per pair, not a pass over memory; the
  kernel-level fusion for torch models is done by the `compile` runtime (inductor with
  freezing fuses conv+activation into oneDNN post-ops) and by TorchScript freezing, on
  whatever this pass leaves.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass, workfile


@dataclass(frozen=True)
class FuseActivationConfig:
    """Options of fuse_activation.

    Attributes:
        fold_bn: torch models: fold BatchNorm first, so that conv→BN→act becomes conv→act
            (ONNX Runtime always folds Conv+BatchNormalization).
    """

    fold_bn: bool = True


@register_pass("fuse_activation", exact=True, config=FuseActivationConfig, accepts=("torch", "onnx"),
               description="conv(+BN)+activation as one op: ONNX Runtime FusedConv for ONNX "
                           "(ORT-only artifact), in-place ConvAct modules for torch")
def apply(model: ModelHandle, config: FuseActivationConfig, ctx: PassContext) -> PassResult:
    """Fuses conv(+BN)+activation pairs of `model`; the input model is untouched."""
    if model.format == "onnx":
        return fuse_onnx(model, ctx)
    return fuse_torch(model, config)


# --------------------------------------------------------------------------- torch


def fuse_torch(model: ModelHandle, config: FuseActivationConfig) -> PassResult:
    import torch

    from . import _torch_graph as tg
    from .fold_bn import fold_module

    if isinstance(model.obj, torch.jit.ScriptModule):
        return PassResult(model, False, "a TorchScript module cannot be edited")
    net = copy.deepcopy(model.obj)
    folded = fold_module(net)[0] if config.fold_bn else []
    scan = tg.find_pairs(net, (torch.nn.Conv2d,), tg.ACT_TYPES)
    fused, skipped = [], list(scan.skipped)
    for conv_name, act_name in scan.pairs:
        modules = dict(net.named_modules())
        conv, act = modules[conv_name], modules[act_name]
        problem = (f"{type(act).__name__} has no in-place form" if not isinstance(act, tg.INPLACE_ACTS)
                   else f"{conv_name} already carries a fused activation"
                   if isinstance(conv, tg.ConvAct) else None)
        if problem:
            skipped.append({"layer": act_name, "reason": problem})
            continue
        tg.set_module(net, conv_name, tg.ConvAct.fuse(conv, act))
        tg.set_module(net, act_name, torch.nn.Identity())
        fused.append({"conv": conv_name, "activation": act_name, "op": type(act).__name__})
    details = {"summary": f"{len(fused)} conv+activation pairs as in-place ConvAct modules, "
                          f"{len(folded)} BatchNorm folded first",
               "fused_pairs": len(fused), "layers_folded": len(folded), "fused": fused,
               "skipped": skipped, "method": scan.method,
               "note": "eager PyTorch: the activation runs in place on the conv output (one "
                       "allocation saved per pair, not a memory pass); kernel fusion is left to "
                       "the compile and torchscript runtimes"}
    if not fused and not folded:
        return PassResult(model, False, "no conv→activation pairs to fuse and no BatchNorm to fold",
                          details)
    meta = {**model.meta, "activations_fused": len(fused),
            "bn_folded": len(folded) + int(model.meta.get("bn_folded", 0))}
    return PassResult(dataclasses.replace(model, obj=net, meta=meta), True, None, details)


# --------------------------------------------------------------------------- onnx

# ORT's Conv+activation fusion on the CPU provider (conv_activation_fusion.cc).
ORT_FUSABLE = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid")


def fuse_onnx(model: ModelHandle, ctx: PassContext) -> PassResult:
    from . import _onnx_graph as og

    before = og.load(model)
    candidates = conv_act_candidates(before)
    counts_before = og.op_counts(before)
    if not candidates and not counts_before.get("BatchNormalization"):
        return PassResult(model, False, "no Conv followed by an activation ONNX Runtime fuses "
                                        f"({', '.join(ORT_FUSABLE)}) and no BatchNormalization",
                          {"summary": "nothing to fuse", "fused_pairs": 0})
    raw = workfile(ctx, "fuse_activation.ort", ".onnx")
    og.ort_optimize(Path(str(model.path)), raw, "extended")
    after = og.load(og.derived(model, raw))
    raw.unlink()
    og.drop_unused_domains(after)
    fused_path = og.save(after, ctx, model, "fuse_activation")
    counts_after = og.op_counts(after)
    n_fused = counts_after.get("com.microsoft.FusedConv", 0) - counts_before.get("com.microsoft.FusedConv", 0)
    details = {"summary": f"{n_fused} of {len(candidates)} Conv+activation pairs fused into "
                          f"FusedConv by ONNX Runtime (EXTENDED level)",
               "fused_pairs": n_fused, "candidates": len(candidates),
               "nodes_before": sum(counts_before.values()), "nodes_after": sum(counts_after.values()),
               "ops_before": counts_before, "ops_after": counts_after,
               "runtime_only": "onnxruntime",
               "note": "ORT-specific graph (com.microsoft ops, CPU provider): runs on ONNX "
                       "Runtime only"}
    if n_fused <= 0 and counts_after.get("BatchNormalization", 0) == counts_before.get("BatchNormalization", 0):
        return PassResult(model, False, "ONNX Runtime fused nothing in this graph", details)
    return PassResult(og.derived(model, fused_path, runtime_only="onnxruntime",
                                 activations_fused=n_fused), True, None, details)


def conv_act_candidates(proto: Any) -> list[tuple[str, str]]:
    """(Conv, activation) node names where the activation is the Conv's only consumer (a
    BatchNormalization in between counts: ORT folds it into the Conv first)."""
    from . import _onnx_graph as og

    users = og.consumers(proto.graph)
    outputs = og.graph_outputs(proto.graph)

    def only_reader(name: str) -> Any:
        readers = users.get(name, [])
        return readers[0] if len(readers) == 1 and name not in outputs else None

    pairs = []
    for node in (n for n in proto.graph.node if n.op_type == "Conv"):
        reader = only_reader(node.output[0])
        if reader is not None and reader.op_type == "BatchNormalization":
            reader = only_reader(reader.output[0])
        if reader is not None and reader.op_type in ORT_FUSABLE:
            pairs.append((node.name or node.output[0], reader.name or reader.output[0]))
    return pairs
