"""Channel importance for `prune_channels` and the choice of the channels each group keeps.

Criteria, per output channel of a source layer (summed over the members of a group, which are
pruned with the same indices): l1 / l2 norm of its filter; bn = |γ| of the BatchNorm after
it (l1 where a member has none, said in the details); taylor = |Σ activation × gradient|
(Molchanov et al., 2017) over a few calibration batches, data-driven.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ._prune_graph import DepGraph


def filter_weight(m: nn.Module) -> torch.Tensor:
    """The (out, ...) weight of a source module (a Conv2d/Linear or a Darknet conv/connected)."""
    if getattr(m, "darknet_type", "") == "connected":
        return m.fc.weight
    return getattr(m, "conv", m).weight


def source_scores(net: nn.Module, g: DepGraph, criterion: str,
                  taylor: dict[str, np.ndarray] | None) -> tuple[list[np.ndarray], list[str]]:
    """Per source: its channels' importance (float64); and notes (fallbacks taken)."""
    modules = dict(net.named_modules())
    scores, notes = [], []
    for src in g.sources:
        w = filter_weight(modules[src.name]).detach().double().flatten(1)
        if criterion == "bn" and src.bn is not None and modules[src.bn].weight is not None:
            scores.append(modules[src.bn].weight.detach().double().abs().numpy())
            continue
        if criterion == "bn":
            notes.append(f"{src.name}: no BatchNorm with scales after it, l1 used")
        if criterion == "l2":
            scores.append(w.pow(2).sum(1).sqrt().numpy())
        elif criterion == "taylor" and taylor is not None:
            scores.append(taylor[src.name])
        else:
            scores.append(w.abs().sum(1).numpy())
    return scores, notes


def taylor_scores(net: nn.Module, g: DepGraph, data: Any, batches: int, batch_size: int,
                  softmax_output: bool) -> dict[str, np.ndarray]:
    """|Σ_{batch, h, w} a·∂L/∂a| per output channel of every source, summed over batches.

    L is the cross-entropy to the labels where the data has them; without labels it is the
    cross-entropy to the model's own top-1 predictions (agreement with itself), so that
    channels the current decisions depend on score high. A Darknet network ending in
    [softmax] outputs probabilities: their log is used as the log-probabilities.
    """
    modules = dict(net.named_modules())
    acts: dict[str, torch.Tensor] = {}
    hooks = [modules[s.name].register_forward_hook(_keeper(acts, s.name)) for s in g.sources]
    totals = {s.name: np.zeros(s.size) for s in g.sources}
    try:
        for start in range(0, min(len(data.x), batches * batch_size), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(data.x[start:start + batch_size]))
            out = net(x.requires_grad_(True))
            logp = torch.log(out.clamp_min(1e-12)) if softmax_output else out.log_softmax(1)
            labels = data.y[start:start + batch_size] if data.y is not None else None
            target = torch.as_tensor(labels, dtype=torch.long) if labels is not None \
                else logp.argmax(1).detach()
            loss = nn.functional.nll_loss(logp.flatten(1), target, reduction="sum")
            grads = torch.autograd.grad(loss, [acts[s.name] for s in g.sources], allow_unused=True)
            for s, a, gr in zip(g.sources, (acts[s.name] for s in g.sources), grads):
                if gr is not None:
                    dims = [d for d in range(a.dim()) if d != 1]
                    totals[s.name] += (a * gr).sum(dim=dims).abs().detach().double().numpy()
    finally:
        for h in hooks:
            h.remove()
    return totals


def _keeper(store: dict, name: str):
    def hook(module, args, output):
        store[name] = output
    return hook


def kept_count(n: int, ratio: float, round_to: int) -> int:
    """Channels kept of n: at least n·(1 − ratio), rounded up to a multiple of round_to,
    never below round_to, never above n."""
    k = math.ceil(n * (1.0 - ratio) / round_to - 1e-9) * round_to
    return int(min(n, max(round_to, k)))


def top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, ascending; ties keep the lower index (stable)."""
    order = np.argsort(-score, kind="stable")
    return np.sort(order[:k])


def layer_plan(scores: dict[int, np.ndarray], ratio: float, round_to: int) -> dict[int, np.ndarray]:
    """scope=layer: every group keeps kept_count(n) channels, its most important ones."""
    return {r: top_k(s, kept_count(len(s), ratio, round_to)) for r, s in scores.items()}


def global_plan(scores: dict[int, np.ndarray], ratio: float, round_to: int,
                max_layer_ratio: float) -> dict[int, np.ndarray]:
    """scope=global: one threshold over importances normalised by each group's mean (so layers
    of different scale compare), removing `ratio` of all prunable channels; no group loses
    more than max_layer_ratio of its channels; then each count is rounded as in layer scope."""
    norm = {r: s / (s.mean() if s.mean() > 0 else 1.0) for r, s in scores.items()}
    everything = np.sort(np.concatenate(list(norm.values())), kind="stable")
    n_remove = int(math.floor(len(everything) * ratio))
    if n_remove == 0:
        return {r: np.arange(len(s)) for r, s in scores.items()}
    threshold = everything[n_remove - 1]
    plan = {}
    for r, s in norm.items():
        removed = min(int((s <= threshold).sum()), int(math.floor(len(s) * max_layer_ratio)))
        plan[r] = top_k(scores[r], kept_count(len(s), removed / len(s), round_to))
    return plan
