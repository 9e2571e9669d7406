"""Tiny task shared by the recovery and QAT tests: a separable 4-class set of 3x8x8
inputs, a small conv net with BatchNorm, a teacher, noisy students, KL to the teacher."""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from infertune.data import Dataset, resolve_preprocess
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
