"""`finetune`: trains a (pruned, decomposed) torch model on labelled data with cross-entropy.

The loop (Adam, seeded batches, early stop on a held-out split, best weights restored, eval
mode at the end) is `recovery.train`; the options are `recovery.Budget`'s. Unlabelled data
is refused with a reason pointing at `distill`. The input model is untouched (deep copy).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

from ..types import ModelHandle
from . import _objectives as objectives
from . import recovery
from .base import PassContext, PassResult, register_pass


@dataclass(frozen=True)
class FinetuneConfig(recovery.Budget):
    """Fine-tuning budget and optimizer settings (see recovery.Budget)."""


@register_pass("finetune", config=FinetuneConfig, accepts=("torch",), needs_data=True,
               trains=True,
               description="fine-tune on labelled training data (cross-entropy, Adam, early "
                           "stop on a held-out split)")
def apply(model: ModelHandle, config: FinetuneConfig, ctx: PassContext) -> PassResult:
    """Fine-tunes a copy of `model` on ctx.train (else ctx.calibration)."""
    why = recovery.refusal(model, ctx, labels=True, teacher=False)
    if why:
        return PassResult(model, False, why)
    train, val = recovery.training_data(ctx, ctx.seed)
    net = copy.deepcopy(model.obj)
    task = objectives.build_task(net, train, val, objectives.Objective())
    log = recovery.train(task, config, ctx.seed, ctx.threads)
    new = dataclasses.replace(model, obj=net, meta={**model.meta, "recovered_by": "finetune"})
    return PassResult(new, True, None, recovery.details(log, task, train, val))
