"""`prune_channels`: structured channel pruning; filters really removed (smaller weights).

The channel dependency graph (`_prune_graph`: torch.fx, Darknet layers as leaves, channel
rules for BN, depthwise convs, concatenation/route, residual add/shortcut, flatten→Linear)
says which layers must lose the same channel indices (groups) and which channels must stay
(the network output, [reorg] inputs, channel shuffles, slicing: anything without a rule).
Each group keeps its most important channels (`_prune_importance`), counts rounded up to a
multiple of `round_to`; `_prune_edit` slices producers and consumers. Like every pass it
works on a deep copy. Accuracy drops: follow it with a recovery pass (fine-tuning).

ShuffleNet v2: the channel shuffle (unflatten/transpose/flatten) and the chunk of its stride-1
units have no channel rule, so the unit outputs are skipped with that reason; the first 1x1
conv of every branch (followed by a depthwise conv and another 1x1) is still pruned.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..profile import profile_model
from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass

CRITERIA = ("l1", "l2", "bn", "taylor")


@dataclass(frozen=True)
class PruneChannelsConfig:
    """Options.

    Attributes:
        ratio: fraction of each prunable layer's output channels to remove, in [0, 1).
        criterion: l1 | l2 (filter norms), bn (|γ| of the BatchNorm after the conv),
            taylor (|activation × gradient| over calibration data; needs --data).
        round_to: kept channel counts are multiples of this (fast kernels), never below it.
        scope: layer (the same ratio everywhere) or global (one threshold over normalised
            importances; no layer loses more than max_layer_ratio).
        ignore: module names whose output channels are kept.
        max_layer_ratio: the per-layer cap of scope=global.
        batches: calibration batches (of 32) for taylor.
    """

    ratio: float = 0.5
    criterion: Literal["l1", "l2", "bn", "taylor"] = "l1"
    round_to: int = 8
    scope: Literal["layer", "global"] = "layer"
    ignore: tuple[str, ...] = ()
    max_layer_ratio: float = 0.9
    batches: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), not {self.ratio}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, not {self.criterion!r}")
        if self.scope not in ("layer", "global"):
            raise ValueError(f"scope must be layer or global, not {self.scope!r}")
        if int(self.round_to) != self.round_to or self.round_to < 1:
            raise ValueError(f"round_to must be a positive integer, not {self.round_to}")
        if not 0.0 < self.max_layer_ratio < 1.0:
            raise ValueError(f"max_layer_ratio must be in (0, 1), not {self.max_layer_ratio}")
        if self.batches < 1:
            raise ValueError(f"batches must be at least 1, not {self.batches}")
        object.__setattr__(self, "ignore", tuple(self.ignore))


@register_pass("prune_channels", config=PruneChannelsConfig, accepts=("torch",),
               description="structured channel pruning through a dependency graph (route/"
                           "concat/residual aware); l1|l2|bn|taylor importance")
def apply(model: ModelHandle, config: PruneChannelsConfig, ctx: PassContext) -> PassResult:
    """Removes the least important output channels of every prunable layer group."""
    import torch

    if config.criterion == "taylor" and ctx.calibration is None:
        raise ConfigError("pass prune_channels: criterion=taylor needs data (--data)")
    if isinstance(model.obj, torch.jit.ScriptModule):
        return PassResult(model, False, "a TorchScript module cannot be edited")
    if config.ratio == 0.0:
        return PassResult(model, False, "ratio=0: nothing to remove", {"criterion": config.criterion})
    net = copy.deepcopy(model.obj).eval()
    try:
        plan = _plan(net, model, config, ctx)
    except Exception as exc:  # untraceable model, autograd failure: a result, not a crash
        from ._torch_graph import first_line

        return PassResult(model, False, f"dependency graph failed: {first_line(exc)}")
    return _finish(model, net, plan, config)


def _plan(net: Any, model: ModelHandle, config: PruneChannelsConfig, ctx: PassContext) -> dict:
    import torch

    from . import _prune_graph as pg
    from . import _prune_importance as pi

    example = torch.zeros(1, *model.input_spec.chw)
    g = pg.build(net, example)
    groups = g.groups()
    skipped = [{"layers": [g.sources[i].name for i in members], "reason": why}
               for members in groups.values() if (why := _why_kept(g, members, config))]
    prunable = {r: m for r, m in groups.items() if not _why_kept(g, m, config)}
    taylor = None
    if config.criterion == "taylor":
        with torch.enable_grad():
            taylor = pi.taylor_scores(net, g, ctx.calibration, config.batches, 32,
                                      _softmax_output(net))
    scores, notes = pi.source_scores(net, g, config.criterion, taylor)
    group_scores = {r: sum(scores[i] for i in m) for r, m in prunable.items()}
    if config.scope == "layer":
        keep = pi.layer_plan(group_scores, config.ratio, config.round_to)
    else:
        keep = pi.global_plan(group_scores, config.ratio, config.round_to, config.max_layer_ratio)
    keep = {r: k for r, k in keep.items() if len(k) < g.sources[r].size}
    return {"graph": g, "keep": keep, "skipped": skipped, "notes": notes, "example": example}


def _why_kept(g: Any, members: list[int], config: PruneChannelsConfig) -> str | None:
    ignored = [g.sources[i].name for i in members if g.sources[i].name in config.ignore]
    if ignored:
        return f"ignored by option: {', '.join(ignored)}"
    if g.sources[members[0]].size <= config.round_to:
        return f"{g.sources[members[0]].size} channels: not above round_to={config.round_to}"
    return g.group_frozen(members)


def _softmax_output(net: Any) -> bool:
    layers = getattr(net, "layers", None)
    index = getattr(net, "output_index", None)
    return layers is not None and index is not None and \
        getattr(layers[index], "darknet_type", "") == "softmax"


def _finish(model: ModelHandle, net: Any, plan: dict, config: PruneChannelsConfig) -> PassResult:
    from . import _prune_edit as pe

    g, keep = plan["graph"], plan["keep"]
    details: dict[str, Any] = {"criterion": config.criterion, "scope": config.scope,
                               "ratio": config.ratio, "round_to": config.round_to,
                               "method": g.method, "skipped": plan["skipped"]}
    if plan["notes"]:
        details["notes"] = plan["notes"]
    if not keep:
        return PassResult(model, False, "no layer can lose channels (see skipped)", details)
    before = pe.layer_shapes(net, plan["example"])
    pe.apply_keep(net, g, keep)
    if before:
        pe.update_darknet(net, before, pe.layer_shapes(net, plan["example"]))
    details["layers"] = [{"layer": s.name, "channels_before": s.size,
                          "channels_after": len(keep.get(g.find(i), range(s.size)))}
                         for i, s in enumerate(g.sources)]
    new = dataclasses.replace(model, obj=net, meta={**model.meta, "pruned_channels": config.ratio})
    details.update(_sizes(model, new))
    pruned = sum(1 for row in details["layers"] if row["channels_after"] < row["channels_before"])
    details["summary"] = (f"{pruned} layers pruned ({config.criterion}); MACs "
                          f"{details['macs_before']:,} -> {details['macs_after']:,}, params "
                          f"{details['params_before']:,} -> {details['params_after']:,}")
    return PassResult(new, True, None, details)


def _sizes(before: ModelHandle, after: ModelHandle) -> dict[str, int]:
    a, b = profile_model(before), profile_model(after)
    return {"params_before": int(a["params"]), "params_after": int(b["params"]),
            "macs_before": int(a["macs"]), "macs_after": int(b["macs"])}
