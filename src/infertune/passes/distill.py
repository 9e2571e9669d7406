"""`distill`: knowledge distillation from the original float model (ctx.reference, the
teacher) into the current one (the student, e.g. pruned or decomposed):

    loss = KL(softmax(teacher/T) ‖ softmax(student/T))·T²            (no labels)
    loss = (1 − alpha)·KL(...)·T² + alpha·CE(student, labels)         (labels)

Works without labels, unlike `finetune`. The loop and its options are `recovery`'s. Models
ending in a softmax (Darknet [softmax]) are handled through log-probabilities, which have
the same softmax as the logits. The input model is untouched (deep copy).
"""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

from ..types import ModelHandle
from . import _objectives as objectives
from . import recovery
from .base import PassContext, PassResult, register_pass


@dataclass(frozen=True)
class DistillConfig(recovery.Budget):
    """Distillation settings; the budget and optimizer options are recovery.Budget's.

    Attributes:
        temperature: softening of both distributions (higher: more weight on the teacher's
            ranking of wrong classes).
        alpha: weight of the label cross-entropy when the data has labels, in [0, 1].
    """

    temperature: float = 4.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        self.check()
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, not {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], not {self.alpha}")


@register_pass("distill", config=DistillConfig, accepts=("torch",), needs_data=True,
               trains=True,
               description="knowledge distillation from the original model (KL at temperature "
                           "T, plus labels when present; Adam, early stop)")
def apply(model: ModelHandle, config: DistillConfig, ctx: PassContext) -> PassResult:
    """Distils ctx.reference into a copy of `model` on ctx.train (else ctx.calibration);
    the teacher's outputs come from the run's cache when an earlier pipeline computed them."""
    import numpy as np

    from ._teacher_cache import teacher_logits

    why = recovery.refusal(model, ctx, labels=False, teacher=True)
    if why:
        return PassResult(model, False, why)
    train, val = recovery.training_data(ctx, ctx.seed)
    net = copy.deepcopy(model.obj)
    t0 = time.perf_counter()
    teacher, _ = teacher_logits(
        ctx.reference.obj, np.ascontiguousarray(train.x, dtype=np.float32), ctx)
    teacher_s = time.perf_counter() - t0  # the search's time planning reads it (engine)
    objective = objectives.Objective(ctx.reference.obj, config.temperature, config.alpha,
                                     teacher_logits=teacher)
    task = objectives.build_task(net, train, val, objective)
    log = recovery.train(task, config, ctx.seed, ctx.threads)
    new = dataclasses.replace(model, obj=net, meta={**model.meta, "recovered_by": "distill"})
    details = {**recovery.details(log, task, train, val), "temperature": config.temperature,
               "alpha": config.alpha if train.y is not None else None,
               "teacher_s": round(teacher_s, 2)}
    return PassResult(new, True, None, details)
