"""`prune_magnitude`: unstructured magnitude pruning (the smallest |w| of Conv/Linear weights
set to zero; biases and BatchNorm untouched).

Said plainly in every result: the tensors stay dense, so dense kernels do the same work and
no speed-up is expected. What it buys is a smaller *stored* model: the details measure, per
layer and in total, the bytes of the weights stored sparse (a 1-bit-per-weight mask + the
float32 nonzeros) and zlib-compressed (level 6), against the dense float32 bytes.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import Any, Literal

from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass

NO_SPEEDUP = "dense kernels: no speed-up expected (zeros are still multiplied)"


@dataclass(frozen=True)
class PruneMagnitudeConfig:
    """Options.

    Attributes:
        sparsity: fraction of each layer's weights (scope=layer) or of all weights
            (scope=global, one magnitude threshold) set to zero, in [0, 1).
        scope: layer | global.
    """

    sparsity: float = 0.5
    scope: Literal["layer", "global"] = "layer"

    def __post_init__(self) -> None:
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), not {self.sparsity}")
        if self.scope not in ("layer", "global"):
            raise ValueError(f"scope must be layer or global, not {self.scope!r}")


@register_pass("prune_magnitude", config=PruneMagnitudeConfig, accepts=("torch",),
               description="unstructured magnitude pruning of conv/linear weights (smaller "
                           "compressed size; dense kernels: no speed-up)")
def apply(model: ModelHandle, config: PruneMagnitudeConfig, ctx: PassContext) -> PassResult:
    """Zeroes the smallest-magnitude weights of every Conv/Linear of a copy of `model`."""
    import torch

    if isinstance(model.obj, torch.jit.ScriptModule):
        return PassResult(model, False, "a TorchScript module cannot be edited")
    if config.sparsity == 0.0:
        return PassResult(model, False, "sparsity=0: nothing to zero", {"note": NO_SPEEDUP})
    net = copy.deepcopy(model.obj)
    layers = weight_layers(net)
    if not layers:
        return PassResult(model, False, "no Conv/Linear weights")
    thresholds = _global_counts(layers, config.sparsity) if config.scope == "global" else None
    rows = []
    for name, w in layers:
        k = thresholds[name] if thresholds else math.floor(w.numel() * config.sparsity)
        zero_smallest(w, k)
        rows.append(layer_row(name, w))
    new = dataclasses.replace(model, obj=net, meta={**model.meta, "weight_sparsity": config.sparsity})
    return PassResult(new, True, None, _details(rows, config))


def weight_layers(net: Any) -> list[tuple[str, Any]]:
    """(qualified name, weight parameter) of every Conv*/Linear, in module order."""
    from torch import nn

    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    return [(name, m.weight) for name, m in net.named_modules()
            if isinstance(m, kinds) and m.weight is not None]


def zero_smallest(w: Any, k: int) -> None:
    """Sets the k smallest |w| to zero in place; ties broken by position (stable sort)."""
    import torch

    if k <= 0:
        return
    with torch.no_grad():
        flat = w.detach().reshape(-1)
        order = torch.sort(flat.abs(), stable=True).indices[:k]
        flat = flat.clone()
        flat[order] = 0.0
        w.copy_(flat.reshape(w.shape))


def _global_counts(layers: list[tuple[str, Any]], sparsity: float) -> dict[str, int]:
    """Per layer, how many weights fall among the smallest `sparsity` of all weights
    (one magnitude threshold; ties broken by layer order, then position)."""
    import torch

    mags = torch.cat([w.detach().abs().reshape(-1) for _, w in layers])
    owner = torch.cat([torch.full((w.numel(),), i) for i, (_, w) in enumerate(layers)])
    chosen = owner[torch.sort(mags, stable=True).indices[:math.floor(mags.numel() * sparsity)]]
    counts = torch.bincount(chosen, minlength=len(layers))
    return {name: int(counts[i]) for i, (name, _) in enumerate(layers)}


def layer_row(name: str, w: Any) -> dict[str, Any]:
    """Achieved sparsity and measured storage sizes of one weight tensor."""
    import numpy as np

    a = np.ascontiguousarray(w.detach().float().numpy())
    n, nonzero = a.size, int(np.count_nonzero(a))
    return {"layer": name, "weights": n, "zeros": n - nonzero,
            "sparsity": round((n - nonzero) / n, 6), "dense_bytes": a.nbytes,
            "bitmask_bytes": int(math.ceil(n / 8)) + 4 * nonzero,
            "zlib_bytes": len(zlib.compress(a.tobytes(), 6))}


def _details(rows: list[dict[str, Any]], config: PruneMagnitudeConfig) -> dict[str, Any]:
    total = {key: sum(r[key] for r in rows)
             for key in ("weights", "zeros", "dense_bytes", "bitmask_bytes", "zlib_bytes")}
    sparsity = total["zeros"] / total["weights"]
    return {
        "summary": f"{sparsity:.1%} of {total['weights']:,} conv/linear weights zero; sparse "
                   f"storage {total['bitmask_bytes']:,} B vs dense {total['dense_bytes']:,} B; "
                   f"{NO_SPEEDUP}",
        "note": NO_SPEEDUP, "scope": config.scope, "requested_sparsity": config.sparsity,
        "achieved_sparsity": round(sparsity, 6), **total,
        "compression_ratio_bitmask": round(total["dense_bytes"] / total["bitmask_bytes"], 4),
        "compression_ratio_zlib": round(total["dense_bytes"] / total["zlib_bytes"], 4),
        "layers": rows}
