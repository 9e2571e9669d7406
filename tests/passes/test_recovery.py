"""finetune / distill: they recover what they should on tiny tasks built here, are
deterministic with a seed, stop early on a plateau, refuse what they cannot do, leave the
input untouched and return an eval-mode model.

The tasks are chosen so that the asserted margins are wide: a separable 4-class problem that
a random net gets ~25% right and 150 Adam steps get > 90% right; a student that starts from
the teacher's weights with large noise (KL ~0.1-1) and ends far closer (< half).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from infertune.data import Dataset, resolve_preprocess
from infertune.passes import PassContext, apply_passes
from infertune.types import InputSpec, ModelHandle

CHW = (3, 8, 8)


def dataset(n: int, labelled: bool, seed: int = 0) -> Dataset:
    """4 classes; class k adds a fixed random pattern (scale 1) to unit Gaussian noise."""
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(123).standard_normal((4, *CHW))
    y = rng.integers(0, 4, n)
    x = (rng.standard_normal((n, *CHW)) + patterns[y]).astype(np.float32)
    return Dataset(x=x, y=y.astype(np.int64) if labelled else None,
                   class_names=[str(i) for i in range(4)], description="tiny test set",
                   preprocess=resolve_preprocess("none"))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def handle(net: nn.Module) -> ModelHandle:
    return ModelHandle(format="torch", obj=net.eval(), input_spec=InputSpec(shape=(1, *CHW)),
                       name="tiny", source="test")


def net(seed: int) -> Net:
    torch.manual_seed(seed)
    return Net().eval()


def ctx(tmp_path, train, reference=None, seed=0) -> PassContext:
    return PassContext(workdir=tmp_path, train=train, reference=reference, seed=seed, threads=1)


def accuracy(model: nn.Module, ds: Dataset) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(ds.x)).argmax(1).numpy() == ds.y).mean())


def test_finetune_raises_accuracy_and_leaves_the_input_alone(tmp_path):
    h = handle(net(0))
    before = copy.deepcopy(h.obj.state_dict())
    test = dataset(400, True, seed=1)
    acc0 = accuracy(h.obj, test)
    out, reports = apply_passes(h, [("finetune", {"steps": 150, "lr": 1e-2, "val_every": 25,
                                                  "quiet": True})],
                                ctx(tmp_path, dataset(400, True)))
    r = reports[0]
    assert r["applied"] and r["val_metric"] == "top1"
    acc1 = accuracy(out.obj, test)
    assert acc0 < 0.5 and acc1 > 0.9, (acc0, acc1)
    assert r["val_metric_after"] > r["val_metric_before"]
    assert r["steps_run"] >= r["best_step"] > 0 and r["seconds"] > 0
    assert not out.obj.training and not out.obj.bn.training
    assert all(torch.equal(v, h.obj.state_dict()[k]) for k, v in before.items())
    # BatchNorm's running statistics were updated in train mode (they start at 0 / 1)
    assert not torch.equal(out.obj.bn.running_mean, before["bn.running_mean"])


def test_finetune_refuses_unlabelled_data(tmp_path):
    h = handle(net(0))
    out, reports = apply_passes(h, [("finetune", {"steps": 5, "quiet": True})],
                                ctx(tmp_path, dataset(50, False)))
    assert not reports[0]["applied"] and "distill" in reports[0]["reason"]
    assert out is h


def kl_to_teacher(student, teacher, x, t=1.0) -> float:
    with torch.no_grad():
        p = F.softmax(teacher(x) / t, 1)
        return float(F.kl_div(F.log_softmax(student(x) / t, 1), p, reduction="batchmean"))


def noisy_copy(model: nn.Module, scale: float, seed: int) -> nn.Module:
    student = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g) * p.abs().mean())
    return student


def teacher_net() -> ModelHandle:
    """A random net made a sensible teacher: BatchNorm statistics of the data (a fresh
    BatchNorm's 0/1 would leave the features unnormalized and the predictions degenerate)
    and a scaled classifier for confident, varied outputs."""
    model = net(0)
    model.bn.momentum = None  # cumulative average over the batches below
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(dataset(512, False, seed=9).x))
        model.fc.weight.mul_(5)
    return handle(model)


def test_distill_lowers_kl_to_the_teacher_without_labels(tmp_path):
    teacher = teacher_net()
    student = handle(noisy_copy(teacher.obj, 1.5, seed=7))
    x_test = torch.from_numpy(dataset(300, False, seed=2).x)
    kl0 = kl_to_teacher(student.obj, teacher.obj, x_test)
    out, reports = apply_passes(student, [("distill", {"steps": 150, "lr": 3e-3,
                                                       "val_every": 25, "quiet": True})],
                                ctx(tmp_path, dataset(300, False), reference=teacher))
    r = reports[0]
    assert r["applied"] and r["val_metric"] == "teacher_agreement"
    kl1 = kl_to_teacher(out.obj, teacher.obj, x_test)
    assert kl0 > 0.05 and kl1 < 0.5 * kl0, (kl0, kl1)
    assert r["loss_last10"] < r["loss_first10"]


def test_distill_needs_a_torch_teacher(tmp_path):
    h = handle(net(0))
    _, reports = apply_passes(h, [("distill", {"steps": 5, "quiet": True})],
                              ctx(tmp_path, dataset(50, True)))
    assert not reports[0]["applied"] and "original model" in reports[0]["reason"]


def test_same_seed_same_weights(tmp_path):
    teacher = teacher_net()
    student = handle(noisy_copy(teacher.obj, 1.0, seed=3))
    step = ("distill", {"steps": 20, "lr": 1e-3, "val_every": 10, "quiet": True})
    states = []
    for run in range(2):
        out, _ = apply_passes(student, [step], ctx(tmp_path / str(run), dataset(100, True),
                                                   reference=teacher, seed=5))
        states.append(out.obj.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    out, _ = apply_passes(student, [step], ctx(tmp_path / "other", dataset(100, True),
                                               reference=teacher, seed=6))
    assert not all(torch.equal(states[0][k], out.obj.state_dict()[k]) for k in states[0])


def test_early_stop_on_a_plateau_restores_the_best_weights(tmp_path):
    # lr 1e-12: the weights barely move, so the validation metric never improves: the loop
    # must stop after `patience` validations and return the weights from before training
    h = handle(net(0))
    out, reports = apply_passes(h, [("finetune", {"steps": 1000, "lr": 1e-12, "val_every": 5,
                                                  "patience": 3, "quiet": True})],
                                ctx(tmp_path, dataset(200, True)))
    r = reports[0]
    assert r["stop_reason"] == "early stop" and r["steps_run"] == 15
    assert r["best_step"] == 0 and r["val_metric_after"] == r["val_metric_before"]
    params = dict(out.obj.named_parameters())
    assert all(torch.equal(p, params[k]) for k, p in h.obj.named_parameters())


def test_seconds_budget_stops_by_time(tmp_path):
    h = handle(net(0))
    _, reports = apply_passes(h, [("finetune", {"seconds": 0.3, "patience": 0, "quiet": True})],
                              ctx(tmp_path, dataset(100, True)))
    r = reports[0]
    assert r["stop_reason"] == "budget" and r["seconds"] >= 0.3


@pytest.mark.parametrize("options,match", [({"steps": "0"}, "steps"),
                                           ({"temperature": "0"}, "temperature"),
                                           ({"alpha": "2"}, "alpha")])
def test_config_errors(options, match):
    from infertune.errors import ConfigError
    from infertune.passes import PASSES
    from infertune.passes.base import config_from_options

    with pytest.raises(ConfigError, match=match):
        config_from_options(PASSES.get("distill"), options)
