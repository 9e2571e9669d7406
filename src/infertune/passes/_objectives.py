"""What the recovery passes train for: cross-entropy on labels (`finetune`), distillation
from a teacher (`distill`, `qat`), or both; and the validation metric that judges progress.
The loop that uses them is `recovery.train`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .recovery import Task, as_logits, is_probability, logits, predict

if TYPE_CHECKING:  # numpy is imported where used: `infertune list passes` imports no framework
    import numpy as np


@dataclass
class Objective:
    """What the student learns: labels (cross-entropy) and/or a teacher (distillation).

    Attributes:
        teacher: a torch module (the float original) or None.
        temperature: softens both distributions in the distillation term.
        alpha: weight of the label term when there is a teacher and labels:
            loss = (1 − alpha)·KD + alpha·CE.
        teacher_logits: `recovery.predict(teacher, train.x)` computed already (the run's
            cache: `_teacher_cache`); None: build_task computes it.
    """

    teacher: Any = None
    temperature: float = 4.0
    alpha: float = 0.5
    teacher_logits: Any = None  # the teacher's logits on the training images, if known


def build_task(net: Any, train: Any, val: Any, objective: Objective,
               set_mode: Callable[[Any, bool], None] | None = None) -> Task:
    """The loss and validation metric of `net` on (train, val) for `objective`.

    The teacher's outputs are computed once (the teacher does not change), in eval mode.
    Validation metric: top-1 against the labels when val is labelled, else top-1 agreement
    with the teacher.
    """
    import numpy as np

    import torch

    x = np.ascontiguousarray(train.x, dtype=np.float32)
    y = None if train.y is None else torch.from_numpy(np.asarray(train.y, dtype=np.int64))
    probs = _student_probabilities(net, x, set_mode)
    soft = None
    if objective.teacher is not None:
        out = objective.teacher_logits
        if out is None:
            t_probs = is_probability(logits(objective.teacher(torch.from_numpy(x[:8]))))
            out = predict(objective.teacher, x, t_probs)
        soft = torch.softmax(out / objective.temperature, 1)
    loss = _loss_fn(x, y, soft, probs, objective)
    metric, name = _metric_fn(val, objective, probs)
    return Task(net, loss, metric, name, len(x), set_mode)


def _student_probabilities(net: Any, x: np.ndarray, set_mode) -> bool:
    import torch

    if set_mode is not None:
        set_mode(net, False)
    else:
        net.eval()
    with torch.no_grad():
        return is_probability(logits(net(torch.from_numpy(x[:8]))))


def _loss_fn(x: np.ndarray, y: Any, soft: Any, probs: bool, objective: Objective):
    import torch
    import torch.nn.functional as F

    t = objective.temperature

    def loss(model: Any, idx: np.ndarray) -> Any:
        out = as_logits(logits(model(torch.from_numpy(x[idx]))), probs)
        ce = F.cross_entropy(out, y[idx]) if y is not None else None
        if soft is None:
            return ce
        # KL(teacher ‖ student) on softened distributions, × T² so its gradients keep
        # their size as T changes (Hinton et al. 2015)
        kd = F.kl_div(F.log_softmax(out / t, 1), soft[idx], reduction="batchmean") * t * t
        return kd if ce is None else (1 - objective.alpha) * kd + objective.alpha * ce

    return loss


def _metric_fn(val: Any, objective: Objective, probs: bool):
    import numpy as np

    import torch

    vx = np.ascontiguousarray(val.x, dtype=np.float32)
    if val.y is not None:
        target, name = torch.from_numpy(np.asarray(val.y, dtype=np.int64)), "top1"
    else:
        t_probs = is_probability(logits(objective.teacher(torch.from_numpy(vx[:8]))))
        target, name = predict(objective.teacher, vx, t_probs).argmax(1), "teacher_agreement"

    def metric(model: Any) -> float:
        return float((predict(model, vx, probs).argmax(1) == target).float().mean())

    return metric, name
