"""torch helpers shared by the graph passes: finding layer pairs, folding BatchNorm, the fused
conv+activation module and the channels-last input hook. Imported only when a pass runs on a
torch model (torch is imported at the top here; `import infertune.passes` never imports it).

Pairs are found with torch.fx, used for *analysis only*: the pass then edits the deep copy's
modules in place (a BatchNorm becomes an Identity, a conv a `ConvAct`), so the model keeps its
class, attributes and module names (a DarknetNet stays a DarknetNet that profile and the
.weights writer understand), which an fx GraphModule would lose.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

CONV_TYPES: tuple[type, ...] = (nn.modules.conv._ConvNd,)
BN_TYPES: tuple[type, ...] = (nn.modules.batchnorm._BatchNorm,)
# Activations that have an in-place form (an `inplace` attribute); others are not fused.
INPLACE_ACTS: tuple[type, ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Hardswish,
                                  nn.Hardtanh, nn.ELU, nn.CELU, nn.Mish, nn.Hardsigmoid)
ACT_TYPES: tuple[type, ...] = INPLACE_ACTS + (nn.Sigmoid, nn.Tanh, nn.GELU)


class _LeafTracer(fx.Tracer):
    """Keeps convs, batch norms and activations as single call_module nodes, including
    subclasses defined outside torch.nn (Darknet's BatchNormCPU/GPU)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, CONV_TYPES + BN_TYPES + ACT_TYPES) or super().is_leaf_module(m, qualname)


@dataclass
class Scan:
    """Layer pairs (first, second) that can be rewritten, and the candidates that cannot.

    Attributes:
        pairs: (qualified name of the producer, qualified name of the consumer).
        skipped: {"layer", "reason"} per candidate left alone (its input is a `first`-type
            layer, but the pair cannot be rewritten).
        unpaired: {"layer", "reason"} per `second`-type layer whose input is something else.
        method: "torch.fx" or "nn.Sequential walk (...why fx failed)".
    """

    pairs: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    unpaired: list[dict[str, str]] = field(default_factory=list)
    method: str = "torch.fx"


def find_pairs(module: nn.Module, first: tuple[type, ...], second: tuple[type, ...]) -> Scan:
    """Every `second`-type layer whose input is a `first`-type layer's output, and nothing else's."""
    try:
        graph = _LeafTracer().trace(module)
    except Exception as exc:  # data-dependent control flow, unsupported Python...
        return sequential_pairs(module, first, second, why=first_line(exc))
    return fx_pairs(dict(module.named_modules()), graph, first, second)


def fx_pairs(modules: dict[str, nn.Module], graph: fx.Graph, first: tuple[type, ...],
             second: tuple[type, ...]) -> Scan:
    scan = Scan()
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], second):
            continue
        source, problem = _producer(node, modules, first)
        if source is None:
            scan.unpaired.append({"layer": node.target, "reason": problem})
            continue
        problem = problem or _sharing(source, node, calls)
        if problem:
            scan.skipped.append({"layer": node.target, "reason": problem})
        else:
            scan.pairs.append((source.target, node.target))
    return scan


def _producer(node: fx.Node, modules: dict[str, nn.Module],
              first: tuple[type, ...]) -> tuple[Any, str | None]:
    """The `first`-type layer whose output `node` reads, looking through Identity modules
    (left where a BatchNorm was folded), and why the pair cannot be rewritten (None: it can);
    (None, why) when the input is not such a layer."""
    if len(node.args) != 1 or node.kwargs:
        return None, "called with more than one argument"
    src = node.args[0]
    while isinstance(src, fx.Node) and src.op == "call_module" \
            and isinstance(modules[src.target], nn.Identity):
        if len(src.users) > 1:
            return None, f"its input ({src.target}) is also read elsewhere"  # not a clean pair
        src = src.args[0]
    if not (isinstance(src, fx.Node) and src.op == "call_module" and isinstance(modules[src.target], first)):
        what = src.target if isinstance(src, fx.Node) else type(src).__name__
        return None, f"its input is not a {'/'.join(t.__name__.strip('_') for t in first)} ({what})"
    users = [u.target if u.op == "call_module" else u.name for u in src.users]
    if len(users) > 1:
        return src, f"the output of {src.target} also goes to {', '.join(map(str, users[1:]))}"
    return src, None


def _sharing(source: fx.Node, node: fx.Node, calls: Counter) -> str | None:
    for n in (source, node):
        if calls[n.target] > 1:
            return f"module {n.target} is called {calls[n.target]} times (shared)"
    return None


def sequential_pairs(module: nn.Module, first: tuple[type, ...], second: tuple[type, ...],
                     why: str) -> Scan:
    """Fallback when fx cannot trace: adjacent children of nn.Sequential containers, whose
    data flow is known without tracing (child i's output is child i+1's only input)."""
    scan = Scan(method=f"nn.Sequential walk (torch.fx failed: {why})")
    for prefix, seq in module.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = [n for n, m in seq.named_children() if not isinstance(m, nn.Identity)]
        for a, b in zip(names, names[1:]):
            if isinstance(getattr(seq, a), first) and isinstance(getattr(seq, b), second):
                scan.pairs.append((_join(prefix, a), _join(prefix, b)))
    return scan


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def set_module(root: nn.Module, qualname: str, new: nn.Module | None) -> None:
    parent_name, _, attr = qualname.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, attr, new)


def parent_of(root: nn.Module, qualname: str) -> nn.Module:
    parent_name = qualname.rpartition(".")[0]
    return root.get_submodule(parent_name) if parent_name else root


# --------------------------------------------------------------------------- BatchNorm folding


def bn_std(bn: nn.Module) -> torch.Tensor:
    """The per-channel denominator of `bn`, in float64.

    Darknet's BatchNormCPU/GPU say it themselves (`effective_std()`: sqrt(var)+1e-6 for a
    CPU-built Darknet, sqrt(var+1e-5) for GPU/AlexeyAB; FORMAT.md §3.2): a generic
    sqrt(var+eps) would be wrong for the CPU convention, whose eps is stored as 0.
    """
    if hasattr(bn, "effective_std"):
        return bn.effective_std().detach().double()
    return torch.sqrt(bn.running_var.detach().double() + bn.eps)


def bn_problem(bn: nn.Module) -> str | None:
    """Why `bn` cannot be folded as an affine map, or None."""
    if bn.training:
        return "in training mode (it would use batch statistics)"
    if bn.running_mean is None or bn.running_var is None:
        return "no running statistics (track_running_stats=False)"
    return None


def conv_problem(conv: nn.Module) -> str | None:
    if isinstance(conv, nn.modules.conv._ConvTransposeNd) and conv.groups != 1:
        return "grouped transposed convolution"
    return None


def fold_bn_into(conv: nn.Module, bn: nn.Module) -> None:
    """conv ← BN(conv): w' = w·γ/σ per output channel, b' = (b − μ)·γ/σ + β, in float64.

    A transposed conv keeps its output channels on weight dim 1 (groups = 1 only).
    """
    scale = bn_std(bn).reciprocal()
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -bn.running_mean.detach().double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    dim = 1 if isinstance(conv, nn.modules.conv._ConvTransposeNd) else 0
    shape = [1] * conv.weight.dim()
    shape[dim] = -1
    w = conv.weight.detach()
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(shift)
    with torch.no_grad():
        conv.weight.copy_((w.double() * scale.view(shape)).to(w.dtype))
        new_bias = (bias * scale + shift).to(w.dtype)
    conv.bias = nn.Parameter(new_bias, requires_grad=conv.weight.requires_grad)


# --------------------------------------------------------------------------- conv + activation


class ConvAct(nn.Conv2d):
    """A Conv2d whose activation runs in place on its own output: one module for the pair.

    Eager PyTorch has no conv kernel with a fused activation for nn.Conv2d, so this saves an
    output-sized allocation per pair, not a pass over memory. It stays a Conv2d (weight, bias,
    out_channels...), so code that inspects convolutions keeps working.
    """

    act: nn.Module

    @classmethod
    def fuse(cls, conv: nn.Conv2d, act: nn.Module) -> "ConvAct":
        """A ConvAct sharing `conv`'s parameters, with an in-place copy of `act`."""
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                  conv.padding, conv.dilation, conv.groups, conv.bias is not None,
                  conv.padding_mode, device="meta")  # meta: no throw-away initialisation
        new.weight, new.bias = conv.weight, conv.bias
        new.act = _inplace(act)
        return new.train(conv.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


def _inplace(act: nn.Module) -> nn.Module:
    import copy

    act = copy.deepcopy(act)
    act.inplace = True
    return act


# --------------------------------------------------------------------------- channels last


def to_channels_last(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: the image input in channels-last (NHWC) memory order.

    A hook rather than a wrapper module, so the model keeps its class and module names; it is
    part of the traced graph in torch.export, TorchScript tracing and the ONNX exporter (where
    it is a no-op), so every torch runtime converts the input without knowing about it.
    """
    x, *rest = args
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return (x, *rest)


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
