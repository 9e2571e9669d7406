"""`fold_bn`: BatchNorm folded into the convolution before it (an exact rewrite).

    conv(x)·γ/σ + (β − μ·γ/σ)  =  conv'(x),  w' = w·γ/σ,  b' = (b − μ)·γ/σ + β

torch models: the pairs are found with torch.fx (conv → BN where the conv's output goes
nowhere else; an nn.Sequential walk when fx cannot trace the model), then the deep copy's
conv takes the folded weights and the BN becomes an Identity (None inside Darknet layers,
whose forward skips a missing BN). σ is the BN module's own denominator: Darknet layers say
it with `effective_std()`, so a model imported with `--bn-eps cpu` is folded with
sqrt(var) + 1e-6 and one with `--bn-eps gpu` with sqrt(var + 1e-5) (FORMAT.md §3.2); any
other BatchNorm with sqrt(var + eps). The arithmetic is done in float64.

ONNX models: BatchNormalization nodes whose input is a Conv's only use are folded into the
Conv's weights (σ = sqrt(var + epsilon); weights may be initializers, Constant nodes or
Identity nodes of those). The torch exporter already folds nn.BatchNorm2d in eval mode, so an
ONNX file exported from a ResNet has none: that is the "does not apply" result, not an error.
Darknet's BatchNormCPU/GPU are exported as BatchNormalization (with the CPU convention's
variance written as (sqrt(var)+1e-6)² and epsilon 0), and fold here exactly.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass


@dataclass(frozen=True)
class FoldBnConfig:
    """No options: the fold is exact and its epsilon is the model's own."""


@register_pass("fold_bn", exact=True, config=FoldBnConfig, accepts=("torch", "onnx"),
               description="fold BatchNorm into the preceding convolution (exact; "
                           "Darknet's CPU/GPU epsilon convention honoured)")
def apply(model: ModelHandle, config: FoldBnConfig, ctx: PassContext) -> PassResult:
    """Folds every foldable conv→BN pair of `model` into the conv; the input is untouched."""
    if model.format == "onnx":
        return fold_onnx(model, ctx)
    return fold_torch(model)


# --------------------------------------------------------------------------- torch


def fold_torch(model: ModelHandle) -> PassResult:
    import torch

    if isinstance(model.obj, torch.jit.ScriptModule):
        return PassResult(model, False, "a TorchScript module cannot be edited; the torchscript "
                                        "runtime's freezing folds BatchNorm by itself")
    net = copy.deepcopy(model.obj)
    folded, skipped, method = fold_module(net)
    details = _details(folded, skipped, method, model.meta.get("bn_eps"))
    if not folded:
        return PassResult(model, False, _nothing_reason(skipped), details)
    meta = {**model.meta, "bn_folded": len(folded) + int(model.meta.get("bn_folded", 0))}
    return PassResult(dataclasses.replace(model, obj=net, meta=meta), True, None, details)


def fold_module(net: Any) -> tuple[list[dict[str, str]], list[dict[str, str]], str]:
    """Folds in place (on a copy the caller owns); returns (folded, skipped, how pairs were found)."""
    from . import _torch_graph as tg

    scan = tg.find_pairs(net, tg.CONV_TYPES, tg.BN_TYPES)
    modules = dict(net.named_modules())
    folded, skipped = [], scan.skipped + scan.unpaired
    for conv_name, bn_name in scan.pairs:
        parent = tg.parent_of(net, bn_name)
        problem = tg.bn_problem(modules[bn_name]) or tg.conv_problem(modules[conv_name])
        if getattr(parent, "darknet_type", None) == "batchnorm":
            problem = "a standalone Darknet [batchnorm] layer is kept (its .weights layout)"
        if problem:
            skipped.append({"layer": bn_name, "reason": problem})
            continue
        tg.fold_bn_into(modules[conv_name], modules[bn_name])
        tg.set_module(net, bn_name, None if hasattr(parent, "darknet_type") else _identity())
        folded.append({"conv": conv_name, "bn": bn_name})
    return folded, skipped, scan.method


def _identity() -> Any:
    from torch import nn

    return nn.Identity()


def _details(folded: list, skipped: list, method: str, bn_eps: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "summary": f"{len(folded)} BatchNorm folded into convolutions, {len(skipped)} kept",
        "layers_folded": len(folded), "folded": folded, "skipped": skipped, "method": method}
    if bn_eps is not None:
        details["bn_eps"] = bn_eps  # the Darknet convention the fold reproduced
    return details


def _nothing_reason(skipped: list[dict[str, str]]) -> str:
    if not skipped:
        return "no BatchNorm layers to fold"
    return f"none of the {len(skipped)} BatchNorm layers can be folded (see skipped)"


# --------------------------------------------------------------------------- onnx


def fold_onnx(model: ModelHandle, ctx: PassContext) -> PassResult:
    from . import _onnx_graph as og

    proto = og.load(model)
    graph = proto.graph
    bns = [n for n in graph.node if n.op_type == "BatchNormalization" and n.domain in ("", "ai.onnx")]
    if not bns:
        return PassResult(model, False, "no BatchNormalization nodes (the torch exporter already "
                                        "folds BatchNorm in eval mode)",
                          {"summary": "nothing to fold", "layers_folded": 0})
    producers = {out: node for node in graph.node for out in node.output}
    facts = (og.consumers(graph), og.graph_outputs(graph), og.constants(graph))
    folded, skipped, doomed = [], [], []
    for bn in bns:
        conv = producers.get(bn.input[0])
        problem = onnx_problem(bn, conv, *facts)
        if problem:
            skipped.append({"layer": bn.name or bn.output[0], "reason": problem})
            continue
        folded.append({"conv": conv.name or conv.output[0], "bn": bn.name or bn.output[0]})
        fold_onnx_pair(graph, conv, bn, facts[2])
        doomed.append(bn)
    details = _details(folded, skipped, "ONNX graph", None)
    if not folded:
        return PassResult(model, False, _nothing_reason(skipped), details)
    og.remove_nodes(graph, doomed)
    og.remove_dead_nodes(graph)  # Constant/Identity nodes that only fed the folded BNs
    out = og.save(proto, ctx, model, "fold_bn")
    return PassResult(og.derived(model, out, bn_folded=len(folded)), True, None, details)


def onnx_problem(bn: Any, conv: Any, users: dict, outputs: set, consts: dict) -> str | None:
    """Why BatchNormalization `bn` cannot be folded into `conv` (its producer), or None."""
    from . import _onnx_graph as og

    if conv is None or conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx"):
        return f"its input is not a Conv ({conv.op_type if conv is not None else 'graph input'})"
    bn_attrs = og.attrs(bn)
    if bn_attrs.get("training_mode", 0) or any(bn.output[1:]) or bn_attrs.get("spatial", 1) == 0:
        return "training-mode or per-activation BatchNormalization"
    if len(users[conv.output[0]]) > 1 or conv.output[0] in outputs:
        return f"the output of Conv {conv.name or conv.output[0]} is also used elsewhere"
    names = list(conv.input[1:]) + list(bn.input[1:5])
    if any(name and name not in consts for name in names):
        return "weights or statistics are computed in the graph, not constants"
    if consts[conv.input[1]].shape[0] != consts[bn.input[1]].shape[0]:
        return "channel counts of Conv and BatchNormalization differ"
    return None


def fold_onnx_pair(graph: Any, conv: Any, bn: Any, consts: dict) -> None:
    """Gives `conv` the folded weights and bias (new initializers) and `bn`'s output name."""
    import numpy as np

    from . import _onnx_graph as og

    w = consts[conv.input[1]]
    b = consts[conv.input[2]] if len(conv.input) > 2 and conv.input[2] else np.zeros(w.shape[0], w.dtype)
    gamma, beta, mean, var = (consts[name].astype(np.float64) for name in bn.input[1:5])
    scale = gamma / np.sqrt(var + og.attrs(bn).get("epsilon", 1e-5))
    w_new = (w.astype(np.float64) * scale.reshape(-1, *[1] * (w.ndim - 1))).astype(w.dtype)
    b_new = ((b.astype(np.float64) - mean) * scale + beta).astype(w.dtype)
    stem = conv.name or conv.output[0]
    conv.input[1] = og.add_initializer(graph, w_new, f"{stem}.weight_bn_folded")
    bias_name = og.add_initializer(graph, b_new, f"{stem}.bias_bn_folded")
    if len(conv.input) > 2:
        conv.input[2] = bias_name
    else:
        conv.input.append(bias_name)
    conv.output[0] = bn.output[0]
