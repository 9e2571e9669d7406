"""`low_rank`: low-rank decomposition of Linear and Conv2d layers (torch models).

- nn.Linear and 1x1 Conv2d: truncated SVD → two layers (in → r, r → out).
- k×k Conv2d (groups=1, zero padding): Tucker-2 on the channel modes (HOSVD, optionally
  refined by HOOI) → 1x1 (C_in → r_in), k×k (r_in → r_out), 1x1 (r_out → C_out).
The arithmetic is in `_decompose.py`. Ranks come from `energy` (the smallest rank holding
that fraction of Σ s²; for Tucker-2 each channel mode on its own) or from `mac_reduction`
(the largest rank that cuts the layer's MACs by that fraction).

A layer is kept when the decomposition would not pay: fewer MACs than `min_macs`, or
decomposed MACs above (1 − min_saving) of the original (a rank close to full: two or three
small layers are slower than one of the same MACs). The pass is lossy (except at full rank,
which it never chooses): follow it with `finetune` or `distill`.

Layers are found by their module type anywhere in the model, including inside Darknet layers
(`DarknetConv.conv`, `DarknetConnected.fc`): the replacement is an nn.Sequential that keeps
`in_channels`/`out_channels` (`in_features`/`out_features`), which those layers read, so the
model keeps its class and module names. The Darknet `.weights` writer cannot save the result.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

from ..profile import profile_model
from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass

# Tucker-2 needs some input channels to compress: the stem conv (3 channels) is kept, as
# usual for Tucker decompositions of CNNs (mac_reduction would give it r_in = 1).
MIN_TUCKER_IN = 8


@dataclass(frozen=True)
class LowRankConfig:
    """Low-rank decomposition; give exactly one of `energy` and `mac_reduction`.

    Attributes:
        energy: keep the smallest rank whose singular values hold this fraction of the
            energy (Σ s²), in (0, 1].
        mac_reduction: choose ranks that cut each layer's MACs by this fraction, in [0, 1).
        min_macs: layers with fewer MACs (at batch 1) are kept.
        min_saving: a layer is decomposed only if it saves at least this fraction of its MACs.
        hooi_iters: HOOI iterations refining the Tucker-2 factors after HOSVD.
    """

    energy: float | None = None
    mac_reduction: float | None = None
    min_macs: int = 100_000
    min_saving: float = 0.1
    hooi_iters: int = 0

    def __post_init__(self) -> None:
        if (self.energy is None) == (self.mac_reduction is None):
            raise ValueError("give exactly one of energy=F (fraction of Σ s² kept, e.g. 0.9) "
                             "and mac_reduction=F (fraction of MACs cut, e.g. 0.5)")
        if self.energy is not None and not 0.0 < self.energy <= 1.0:
            raise ValueError(f"energy must be in (0, 1], not {self.energy}")
        if self.mac_reduction is not None and not 0.0 <= self.mac_reduction < 1.0:
            raise ValueError(f"mac_reduction must be in [0, 1), not {self.mac_reduction}")
        if self.min_macs < 0 or self.hooi_iters < 0:
            raise ValueError("min_macs and hooi_iters must be ≥ 0")
        if not 0.0 <= self.min_saving < 1.0:
            raise ValueError(f"min_saving must be in [0, 1), not {self.min_saving}")


@register_pass("low_rank", config=LowRankConfig, accepts=("torch",),
               description="low-rank decomposition: truncated SVD for Linear/1x1 conv, "
                           "Tucker-2 for k×k conv (lossy: follow with finetune or distill)")
def apply(model: ModelHandle, config: LowRankConfig, ctx: PassContext) -> PassResult:
    """Decomposes every layer that pays off, on a deep copy; the input is untouched."""
    import torch


    if isinstance(model.obj, torch.jit.ScriptModule):
        return PassResult(model, False, "a TorchScript module cannot be edited")
    net = copy.deepcopy(model.obj).eval()
    decomposed, skipped = decompose_module(net, model.input_spec.chw, config)
    details: dict[str, Any] = {"decomposed": decomposed, "skipped": skipped,
                               "layers_decomposed": len(decomposed)}
    if not decomposed:
        reason = "no layer to decompose" if not skipped else \
            f"none of the {len(skipped)} candidate layers would gain (see skipped)"
        return PassResult(model, False, reason, details)
    new = dataclasses.replace(model, obj=net, meta={**model.meta, "low_rank": len(decomposed)})
    before, after = profile_model(model), profile_model(new)
    details.update(params_before=before["params"], params_after=after["params"],
                   macs_before=before["macs"], macs_after=after["macs"],
                   summary=f"{len(decomposed)} layers decomposed, {len(skipped)} kept; MACs "
                           f"{before['macs']:,} → {after['macs']:,}")
    return PassResult(new, True, None, details)


def decompose_module(net: Any, chw: tuple[int, int, int],
                     config: LowRankConfig) -> tuple[list[dict], list[dict]]:
    """Replaces the layers worth it in `net` (in place: the caller's copy)."""
    from . import _torch_graph as tg

    decomposed, skipped = [], []
    for name, (layer, shapes) in layer_shapes(net, chw).items():
        plan = plan_layer(layer, shapes, config)
        if "reason" in plan:
            skipped.append({"layer": name, **plan})
            continue
        new, kept = build(layer, plan, config.hooi_iters)
        tg.set_module(net, name, new)
        decomposed.append({"layer": name, **plan, "kept_energy": round(kept, 6)})
    return decomposed, skipped


def layer_shapes(net: Any, chw: tuple[int, int, int]) -> dict[str, tuple[Any, list]]:
    """{name: (module, [(input shape, output shape) per call])} for each Linear and Conv2d,
    from one batch-1 forward pass."""
    import torch
    from torch import nn

    calls: dict[str, tuple[Any, list]] = {}
    hooks = []
    for name, m in net.named_modules():
        if type(m) in (nn.Linear, nn.Conv2d):  # exact types: subclasses may compute differently
            calls[name] = (m, [])
            hooks.append(m.register_forward_hook(
                lambda mod, args, out, key=name: calls[key][1].append(
                    (tuple(args[0].shape), tuple(out.shape)))))
    try:
        with torch.no_grad():
            net(torch.zeros((1, *chw)))
    finally:
        for h in hooks:
            h.remove()
    return calls


def plan_layer(layer: Any, shapes: list, config: LowRankConfig) -> dict[str, Any]:
    """The ranks and MACs for one layer, or {"reason", "macs_before"} when it is kept."""
    from torch import nn

    if len(shapes) != 1:
        return {"reason": f"called {len(shapes)} times in a forward pass (shared or unused)"}
    (in_shape, out_shape), = shapes
    if isinstance(layer, nn.Linear):
        rows = 1
        for d in out_shape[1:-1]:  # a Linear on (B, ..., N) computes one row per leading index
            rows *= d
        return _plan_svd(layer.weight.detach().numpy(), rows, config)
    problem = _conv_problem(layer)
    if problem:
        return {"reason": problem}
    if layer.kernel_size == (1, 1):
        return _plan_svd(layer.weight.detach().numpy()[:, :, 0, 0], _positions(out_shape), config)
    return _plan_tucker(layer, _positions(in_shape), _positions(out_shape), config)


def _positions(shape: tuple) -> int:
    """Pixels a conv computes per sample: the product of the (B, C, H, W) shape's H·W."""
    n = 1
    for d in shape[2:]:
        n *= d
    return n


def _conv_problem(conv: Any) -> str | None:
    if conv.groups != 1:
        return f"grouped convolution (groups={conv.groups}): already factorized"
    if conv.padding_mode != "zeros":
        return f"padding_mode {conv.padding_mode!r}: the channel factors need zero padding"
    if isinstance(conv.padding, str):
        return f"padding={conv.padding!r} (string padding is not carried over)"
    return None


def _plan_svd(weight: Any, positions: int, config: LowRankConfig) -> dict[str, Any]:
    from . import _decompose as d

    c_out, c_in = weight.shape
    before = c_out * c_in * positions
    if before < config.min_macs:
        return {"reason": f"{before:,} MACs < min_macs {config.min_macs:,}", "macs_before": before}
    if config.energy is not None:
        import numpy as np

        rank = d.energy_rank(np.linalg.svd(weight.astype(np.float64), compute_uv=False),
                             config.energy)
    else:
        rank = d.svd_mac_rank(c_in, c_out, config.mac_reduction)
    return _judge({"method": "svd", "rank": rank, "full_rank": min(c_in, c_out)},
                  before, d.svd_macs(c_in, c_out, rank, positions), config)


def _plan_tucker(conv: Any, in_pixels: int, out_pixels: int,
                 config: LowRankConfig) -> dict[str, Any]:
    from . import _decompose as d

    c_out, c_in, kh, kw = conv.weight.shape
    before = c_out * c_in * kh * kw * out_pixels
    if before < config.min_macs:
        return {"reason": f"{before:,} MACs < min_macs {config.min_macs:,}", "macs_before": before}
    if c_in < MIN_TUCKER_IN:
        return {"reason": f"{c_in} input channels: too few to factor (an image-input conv "
                          "would lose whole colour directions)", "macs_before": before}
    if config.energy is not None:
        s_out, s_in = d.mode_singular_values(conv.weight.detach().numpy())
        r_in, r_out = d.energy_rank(s_in, config.energy), d.energy_rank(s_out, config.energy)
    else:
        r_in, r_out = d.tucker_mac_ranks(c_in, c_out, kh * kw, in_pixels, out_pixels,
                                         config.mac_reduction)
    after = d.tucker_macs(c_in, c_out, kh * kw, r_in, r_out, in_pixels, out_pixels)
    return _judge({"method": "tucker2", "rank": [r_in, r_out], "full_rank": [c_in, c_out]},
                  before, after, config)


def _judge(plan: dict[str, Any], before: int, after: int, config: LowRankConfig) -> dict[str, Any]:
    """The plan with its MACs, or the reason to keep the layer."""
    plan = {**plan, "macs_before": before, "macs_after": after}
    if after >= before:
        return {**plan, "reason": f"rank {plan['rank']} would cost {after:,} MACs, not fewer "
                                  f"than {before:,}"}
    if after > (1.0 - config.min_saving) * before:
        return {**plan, "reason": f"rank {plan['rank']} saves {1 - after / before:.1%} of the "
                                  f"MACs, less than min_saving {config.min_saving:.0%}"}
    return plan


def build(layer: Any, plan: dict[str, Any], hooi_iters: int) -> tuple[Any, float]:
    """The replacement module and the fraction of ‖W‖² it keeps."""
    from torch import nn

    from . import _decompose as d

    if plan["method"] == "tucker2":
        return d.tucker_conv(layer, *plan["rank"], hooi_iters=hooi_iters)
    if isinstance(layer, nn.Linear):
        new, s = d.svd_linear(layer, plan["rank"])
    else:
        new, s = d.svd_conv1x1(layer, plan["rank"])
    return new, d.kept_energy(s, plan["rank"])
