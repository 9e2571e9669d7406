"""The channel dependency graph behind `prune_channels` (torch; imported only when it runs).

Why our own graph and not Torch-Pruning: Torch-Pruning 1.6.1 (evaluated with torch 2.13 on
this code base) pruned darknet19, resnet18, mobilenet_v2 and ref-small, but failed on an
imported cfg with a Darknet [reorg] (IndexError inside its index mapping) and on ShuffleNet v2
(ZeroDivisionError at the channel shuffle), and it does not know that our Darknet layers carry
their shapes (`in_shape`/`out_shape`, which reorg, shortcut and softmax read in forward). It
also edits the model in place. A graph of our own, traced with torch.fx with every Darknet
layer as a leaf and explicit channel rules per layer, is small and safe: anything it does not
understand freezes the channels that reach it (skipped with the reason) instead of failing.

How it works: every tensor gets a channel map, a list of segments (the conv/linear whose
output channels these are, or None for channels that must stay). Convs and Linears start
new segments ("sources"); BN, activations, pools, depthwise convs pass the map through;
concatenation (torch.cat, Darknet [route]) joins maps; additions (ResNet residuals, Darknet
[shortcut]) merge their sources into one group (union-find) so that they are pruned with the
same indices; flatten→Linear remembers the spatial size per channel. A source that reaches
an op without a rule (reorg, channel shuffle, slicing, the network output) is frozen.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

CONV, BN, LINEAR = nn.Conv2d, nn.modules.batchnorm._BatchNorm, nn.Linear
# Modules and functions that act on each channel separately: the channel map passes through.
PASSTHROUGH_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Hardswish, nn.Hardtanh,
                       nn.ELU, nn.CELU, nn.Mish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.GELU,
                       nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                       nn.AdaptiveMaxPool2d, nn.Upsample)
PASSTHROUGH_FUNCTIONS = {F.relu, F.relu6, F.leaky_relu, F.silu, F.gelu, F.hardswish, F.elu,
                         F.dropout, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
                         F.interpolate, torch.relu, torch.sigmoid, torch.tanh}
PASSTHROUGH_METHODS = {"relu", "sigmoid", "tanh", "contiguous", "clone", "float", "detach"}
BINARY = {operator.add, operator.mul, operator.sub, torch.add, torch.mul, "add", "mul", "sub"}
DARKNET_PASSTHROUGH = {"maxpool", "avgpool", "dropout", "empty", "activation", "logistic",
                       "upsample", "crop", "cost"}


@dataclass(frozen=True)
class Seg:
    """`size` channels produced by source `source` (an index), or fixed ones (None)."""

    source: int | None
    size: int


@dataclass(frozen=True)
class CMap:
    """The channels of a tensor; `hw` values per channel once flattened (for a Linear)."""

    segs: tuple[Seg, ...]
    hw: int = 1

    @property
    def channels(self) -> int:
        return sum(s.size for s in self.segs)


@dataclass
class Source:
    """A layer whose output channels may be removed.

    Attributes:
        name: qualified module name (a Conv2d, Linear, or a Darknet conv/connected layer).
        size: its output channels.
        bn: qualified name of the BatchNorm right after it (the bn criterion), or None.
    """

    name: str
    size: int
    bn: str | None = None


@dataclass(frozen=True)
class Use:
    """A module that reads a channel map: `conv_in`/`linear_in` (its input channels),
    `dw` (a depthwise conv: input = output channels) or `bn` (per-channel parameters)."""

    module: str
    kind: str
    cmap: CMap


@dataclass
class DepGraph:
    """Sources, their uses, the groups that must share indices and why some are frozen."""

    sources: list[Source] = field(default_factory=list)
    uses: list[Use] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    frozen: dict[int, str] = field(default_factory=dict)
    method: str = "torch.fx"

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def freeze(self, cmap: CMap | None, reason: str) -> None:
        for seg in cmap.segs if cmap else ():
            if seg.source is not None:
                self.frozen.setdefault(seg.source, reason)

    def groups(self) -> dict[int, list[int]]:
        """Root source index → member source indices (channels pruned together)."""
        out: dict[int, list[int]] = {}
        for i in range(len(self.sources)):
            out.setdefault(self.find(i), []).append(i)
        return out

    def group_frozen(self, members: list[int]) -> str | None:
        reasons = [f"{self.sources[i].name}: {self.frozen[i]}" for i in members if i in self.frozen]
        return "; ".join(reasons) if reasons else None


class _Tracer(fx.Tracer):
    """Darknet layers (and every torch.nn layer, fx's default) stay single nodes."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return bool(getattr(m, "darknet_type", "")) or super().is_leaf_module(m, qualname)


def trace(net: nn.Module, example: torch.Tensor) -> fx.GraphModule:
    """The fx graph of `net` with tensor shapes in node.meta (ShapeProp at `example`)."""
    from torch.fx.passes.shape_prop import ShapeProp

    graph = _Tracer().trace(net)
    gm = fx.GraphModule(net, graph)
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    return gm


def shape(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def build(net: nn.Module, example: torch.Tensor) -> DepGraph:
    """The dependency graph of `net` (traced at `example`, a batch-1 input)."""
    gm = trace(net, example)
    modules = dict(net.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    walker = _Walker(DepGraph(), modules, calls)
    for node in gm.graph.nodes:
        walker.visit(node)
    return walker.g


class _Walker:
    """Gives each fx node its channel map, recording sources, uses and groups on the way."""

    def __init__(self, g: DepGraph, modules: dict[str, nn.Module], calls: dict[str, int]):
        self.g, self.modules, self.calls = g, modules, calls
        self.env: dict[fx.Node, CMap | None] = {}
        self.producer: dict[fx.Node, int] = {}  # node → the source it created

    def visit(self, node: fx.Node) -> None:
        if node.op == "output":
            for arg in _flat_nodes(node.args):
                self.g.freeze(self.env.get(arg), "reaches the network output")
            return
        if shape(node) is None:  # sizes, ints, tuples: no channels
            self.env[node] = None
            for arg in _flat_nodes((node.args, node.kwargs)):
                self.g.freeze(self.env.get(arg), f"read by {_what(node)} (not a tensor op)")
            return
        cmap = None
        if node.op == "call_module":
            cmap = self.module(node, self.modules[node.target])
        elif node.op in ("call_function", "call_method"):
            cmap = self.function(node)
        if cmap is not None and cmap.channels != self.channels_of(node):
            cmap = None  # a rule that disagrees with the real shape: trust nothing
        self.env[node] = cmap if cmap is not None else self.unknown(node)

    # ---------------------------------------------------------------- helpers

    def channels_of(self, node: fx.Node) -> int:
        s = shape(node)
        return s[1] if s is not None and len(s) >= 2 else 1

    def unknown(self, node: fx.Node) -> CMap:
        """No rule: the inputs' channels are frozen, the output's channels are fixed."""
        for arg in _flat_nodes((node.args, node.kwargs)):
            self.g.freeze(self.env.get(arg), f"read by {_what(node)}, which has no channel rule")
        return CMap((Seg(None, self.channels_of(node)),))

    def new_source(self, node: fx.Node, name: str, size: int, bn: str | None = None) -> CMap:
        self.g.sources.append(Source(name, size, bn))
        self.g.parent.append(len(self.g.parent))
        self.producer[node] = len(self.g.sources) - 1
        if self.calls.get(name, 1) > 1:
            self.g.frozen[len(self.g.sources) - 1] = "module called more than once (shared)"
        return CMap((Seg(len(self.g.sources) - 1, size),))

    def arg(self, node: fx.Node, i: int = 0) -> CMap | None:
        a = node.args[i] if len(node.args) > i else None
        return self.env.get(a) if isinstance(a, fx.Node) else None

    # ---------------------------------------------------------------- modules

    def module(self, node: fx.Node, m: nn.Module) -> CMap | None:
        dtype = getattr(m, "darknet_type", "")
        if dtype:
            return self.darknet(node, m, dtype)
        if self.calls[node.target] > 1 and isinstance(m, (CONV, BN, LINEAR)):
            return None
        cmap = self.arg(node)
        if isinstance(m, CONV):
            return self.conv(node, node.target, m, cmap)
        if isinstance(m, BN) and cmap is not None and len(node.args) == 1:
            self.g.uses.append(Use(node.target, "bn", cmap))
            src = node.args[0]
            if src in self.producer and len(src.users) == 1:
                self.g.sources[self.producer[src]].bn = node.target
            return cmap
        if isinstance(m, LINEAR):
            return self.linear(node, node.target, m, cmap)
        if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
            return self.flatten(node)
        if isinstance(m, PASSTHROUGH_MODULES) and len(node.args) == 1:
            return cmap
        return None

    def conv(self, node: fx.Node, name: str, conv: nn.Module, cmap: CMap | None,
             bn: str | None = None) -> CMap | None:
        if cmap is None or cmap.hw != 1:
            return None
        if conv.groups == 1:
            self.g.uses.append(Use(name, "conv_in", cmap))
            return self.new_source(node, name, conv.out_channels, bn)
        if conv.groups == conv.in_channels == conv.out_channels:  # depthwise: follows its input
            self.g.uses.append(Use(name, "dw", cmap))
            return cmap
        return None  # grouped conv: channels tied across groups (not handled)

    def linear(self, node: fx.Node, name: str, fc: nn.Linear, cmap: CMap | None,
               bn: str | None = None) -> CMap | None:
        in_shape = shape(node.args[0])
        if cmap is None or in_shape is None or len(in_shape) != 2:
            return None
        self.g.uses.append(Use(name, "linear_in", cmap))
        return self.new_source(node, name, fc.out_features, bn)

    def darknet(self, node: fx.Node, layer: nn.Module, dtype: str) -> CMap | None:
        cmap = self.arg(node)
        if dtype == "convolutional" and not hasattr(layer, "blur"):
            bn = f"{node.target}.bn" if layer.bn is not None else None
            out = self.conv(node, node.target, layer.conv, cmap, bn)
            if out is cmap and cmap is not None and bn:  # depthwise: its BN follows the input
                self.g.uses.append(Use(bn, "bn", cmap))
            return out
        if dtype == "connected" and cmap is not None:
            in_shape = shape(node.args[0])
            hw = in_shape[2] * in_shape[3] if len(in_shape) == 4 else cmap.hw
            self.g.uses.append(Use(f"{node.target}.fc", "linear_in", CMap(cmap.segs, hw)))
            bn = f"{node.target}.bn" if layer.bn is not None else None
            return self.new_source(node, node.target, layer.fc.out_features, bn)
        if dtype == "batchnorm" and cmap is not None:
            self.g.uses.append(Use(f"{node.target}.bn", "bn", cmap))
            return cmap
        if dtype in DARKNET_PASSTHROUGH:
            return cmap
        if dtype == "route" and layer.image and all(s is None for s in layer.slices):
            return self.cat([self.env.get(a) for a in node.args[1:]])
        if dtype == "shortcut" and all(g.same for g in layer.geometry):
            return self.add([self.env.get(a) for a in node.args])
        return None

    # ---------------------------------------------------------------- functions

    def function(self, node: fx.Node) -> CMap | None:
        t = node.target
        if t in PASSTHROUGH_FUNCTIONS or (node.op == "call_method" and t in PASSTHROUGH_METHODS):
            return self.arg(node)
        if t in BINARY:
            return self.binary(node)
        if t in (torch.cat, torch.concat):
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            tensors = node.args[0]
            if dim == 1 and all(len(shape(a) or ()) >= 2 for a in tensors):
                return self.cat([self.env.get(a) for a in tensors])
            return None
        if t in (torch.flatten, "flatten"):
            return self.flatten(node)
        if t == "mean":
            dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            dims = dims if isinstance(dims, (tuple, list)) else (dims,)
            return self.arg(node) if dims and all(d in (2, 3, -1, -2) for d in dims) else None
        return None

    def binary(self, node: fx.Node) -> CMap | None:
        tensors = [a for a in node.args if isinstance(a, fx.Node) and shape(a) is not None]
        if len(tensors) == 1 and all(isinstance(a, (int, float, fx.Node)) for a in node.args):
            return self.env.get(tensors[0])
        if len(tensors) == 2 and shape(tensors[0]) == shape(tensors[1]) == shape(node):
            return self.add([self.env.get(a) for a in tensors])
        return None

    def add(self, maps: list[CMap | None]) -> CMap | None:
        """Element-wise sum/product: the same channel of every operand is kept or removed
        together. Sources of aligned segments are merged; anything else is frozen."""
        if any(m is None for m in maps) or len({m.channels for m in maps}) != 1:
            return None
        first = maps[0]
        for other in maps[1:]:
            if [s.size for s in other.segs] != [s.size for s in first.segs]:
                return None
            for a, b in zip(first.segs, other.segs):
                if a.source is None or b.source is None:
                    self.g.freeze(CMap((a, b)), "added to channels that must stay")
                else:
                    self.g.union(a.source, b.source)
        return first

    def cat(self, maps: list[CMap | None]) -> CMap | None:
        if not maps or any(m is None or m.hw != 1 for m in maps):
            return None
        return CMap(tuple(s for m in maps for s in m.segs))

    def flatten(self, node: fx.Node) -> CMap | None:
        in_shape, cmap = shape(node.args[0]), self.arg(node)
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        if node.op == "call_module":
            start, end = 1, -1
        if cmap is None or start != 1 or end != -1 or in_shape is None:
            return None
        hw = 1
        for d in in_shape[2:]:
            hw *= d
        return CMap(cmap.segs, cmap.hw * hw)


def _flat_nodes(obj: Any) -> list[fx.Node]:
    out: list[fx.Node] = []
    fx.node.map_arg(obj, lambda n: out.append(n))
    return out


def _what(node: fx.Node) -> str:
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    return f"{node.op} {target}"
