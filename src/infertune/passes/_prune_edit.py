"""Removing channels for `prune_channels`: given the indices each group keeps, slice the
weights of every producer and consumer recorded in the dependency graph (`_prune_graph`),
then bring Darknet layers' recorded shapes up to date. Works in place on the pass's copy.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ._prune_graph import CMap, DepGraph, trace


def kept_indices(cmap: CMap, keep: dict[int, np.ndarray], g: DepGraph) -> list[int]:
    """The channels of a tensor with map `cmap` that stay, in the tensor's own numbering;
    expanded by `cmap.hw` (the values per channel a Linear sees after a flatten)."""
    idx: list[int] = []
    offset = 0
    for seg in cmap.segs:
        root = g.find(seg.source) if seg.source is not None else None
        chosen = keep[root] if root in keep else range(seg.size)
        idx += [offset + int(i) for i in chosen]
        offset += seg.size
    if cmap.hw == 1:
        return idx
    return [c * cmap.hw + k for c in idx for k in range(cmap.hw)]


def apply_keep(net: nn.Module, g: DepGraph, keep: dict[int, np.ndarray]) -> None:
    """Slices every affected tensor of `net` (in place) so that group root r keeps keep[r]."""
    modules = dict(net.named_modules())
    for i, src in enumerate(g.sources):
        root = g.find(i)
        if root not in keep:
            continue
        m = modules[src.name]
        idx = torch.as_tensor(keep[root], dtype=torch.long)
        if getattr(m, "darknet_type", "") == "connected":
            _slice_out(m.fc, idx)
        else:
            _slice_out(getattr(m, "conv", m), idx)
        if getattr(m, "darknet_type", "") and m.bn is not None:
            _slice_bn(m.bn, idx)  # inside the Darknet layer: no separate use records it
    for use in g.uses:
        idx = torch.as_tensor(kept_indices(use.cmap, keep, g), dtype=torch.long)
        m = modules[use.module]
        if use.kind == "bn":
            _slice_bn(m, idx)
        elif use.kind == "dw":
            conv = getattr(m, "conv", m)
            _slice_out(conv, idx)
            conv.in_channels = conv.groups = len(idx)
        elif use.kind == "conv_in":
            _slice_in(getattr(m, "conv", m), idx)
        elif use.kind == "linear_in":
            _slice_in(m, idx)


def _param(t: torch.Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(t.clone(), requires_grad=like.requires_grad)


def _slice_out(m: nn.Module, idx: torch.Tensor) -> None:
    with torch.no_grad():
        m.weight = _param(m.weight.index_select(0, idx), m.weight)
        if m.bias is not None:
            m.bias = _param(m.bias.index_select(0, idx), m.bias)
    if isinstance(m, nn.Linear):
        m.out_features = len(idx)
    else:
        m.out_channels = len(idx)


def _slice_in(m: nn.Module, idx: torch.Tensor) -> None:
    with torch.no_grad():
        m.weight = _param(m.weight.index_select(1, idx), m.weight)
    if isinstance(m, nn.Linear):
        m.in_features = len(idx)
    else:
        m.in_channels = len(idx)


def _slice_bn(bn: nn.Module, idx: torch.Tensor) -> None:
    with torch.no_grad():
        if bn.weight is not None:
            bn.weight = _param(bn.weight.index_select(0, idx), bn.weight)
            bn.bias = _param(bn.bias.index_select(0, idx), bn.bias)
        for name in ("running_mean", "running_var"):
            buf = getattr(bn, name)
            if buf is not None:
                setattr(bn, name, buf.index_select(0, idx).clone())
    bn.num_features = len(idx)


# --------------------------------------------------------------------------- Darknet shapes


def layer_shapes(net: nn.Module, example: torch.Tensor) -> dict[str, tuple[Any, Any]]:
    """Darknet layer name → (shape of its first input, shape of its output), per image."""
    gm = trace(net, example)
    out = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and getattr(gm.get_submodule(node.target), "darknet_type", ""):
            first = node.args[0].meta["tensor_meta"].shape[1:]
            out[node.target] = (_darknet_shape(first), _darknet_shape(node.meta["tensor_meta"].shape[1:]))
    return out


def _darknet_shape(s: Any) -> Any:
    s = tuple(int(v) for v in s)
    return s if len(s) == 3 else int(np.prod(s))


def update_darknet(net: nn.Module, before: dict, after: dict) -> None:
    """Darknet layers record their shapes (and the net its per-layer shapes and MACs); where
    a recorded shape was the traced one before pruning, it becomes the traced one after."""
    for name, (in_before, out_before) in before.items():
        layer = net.get_submodule(name)
        in_after, out_after = after[name]
        if layer.in_shape == in_before:
            layer.in_shape = in_after
        if layer.out_shape == out_before:
            layer.out_shape = out_after
        if hasattr(net, "out_shapes") and 0 <= layer.index < len(net.out_shapes):
            net.out_shapes[layer.index] = layer.out_shape
            net.macs[layer.index] = _darknet_macs(layer, net.macs[layer.index])


def _darknet_macs(layer: nn.Module, old: int) -> int:
    if layer.darknet_type == "convolutional" and isinstance(layer.out_shape, tuple) \
            and not hasattr(layer, "blur"):
        c = layer.conv
        _, h, w = layer.out_shape
        kh, kw = c.kernel_size
        return int(c.out_channels * h * w * (c.in_channels // c.groups) * kh * kw)
    if layer.darknet_type == "connected":
        return int(layer.fc.in_features * layer.fc.out_features)
    return old
