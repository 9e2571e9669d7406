"""Darknet activations (FORMAT.md §4) as torch modules.

Where PyTorch has a module computing the same formula it is used (so later passes and the
ONNX exporter see a standard op: LeakyReLU, Sigmoid, SiLU, ...); the others are `Formula`
modules that spell out Darknet's expression, constants included (Darknet's selu and gelu use
rounded constants that differ from torch.nn.SELU/GELU in the 6th digit).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from ...errors import UnsupportedModel


def _where(cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return torch.where(cond, a, b)


def _loggy(x: Tensor) -> Tensor:
    return 2.0 * torch.sigmoid(x) - 1.0


def _selu(x: Tensor) -> Tensor:
    return _where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * (torch.exp(x) - 1.0))


def _relie(x: Tensor) -> Tensor:
    return _where(x > 0, x, 0.01 * x)


def _ramp(x: Tensor) -> Tensor:
    return x * (x > 0).to(x.dtype) + 0.1 * x


def _plse(x: Tensor) -> Tensor:
    inner = 0.125 * x + 0.5
    return _where(x < -4, 0.01 * (x + 4), _where(x > 4, 0.01 * (x - 4) + 1, inner))


def _lhtan(x: Tensor) -> Tensor:
    return _where(x < 0, 0.001 * x, _where(x > 1, 0.001 * (x - 1) + 1, x))


def _stair(x: Tensor) -> Tensor:
    n = torch.floor(x)
    half = torch.floor(x / 2.0)
    # C's n % 2 == 0 is a parity test for negative n too, so remainder() is equivalent
    return _where(torch.remainder(n, 2.0) == 0, half, (x - n) + half)


def _hard_mish(x: Tensor) -> Tensor:
    return _where(x > 0, x, _where(x > -2, x * x / 2 + x, torch.zeros_like(x)))


def _gelu(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(0.797885 * x + 0.035677 * x * x * x))


_FORMULAS: dict[str, Callable[[Tensor], Tensor]] = {
    "loggy": _loggy, "selu": _selu, "relie": _relie, "ramp": _ramp, "plse": _plse,
    "lhtan": _lhtan, "stair": _stair, "hard_mish": _hard_mish, "gelu": _gelu,
}  # fmt: skip

_MODULES: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "leaky": lambda: nn.LeakyReLU(0.1),
    "revleaky": lambda: nn.LeakyReLU(0.1),  # AB: same forward as leaky, different gradient
    "relu": nn.ReLU,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": lambda: nn.ELU(alpha=1.0),
    "hardtan": lambda: nn.Hardtanh(-1.0, 1.0),
    "relu6": nn.ReLU6,
    "swish": nn.SiLU,
    "mish": nn.Mish,  # x*tanh(softplus(x)), softplus threshold 20 as in AB
}

# Darknet names we know but cannot run: AB's per-pixel channel normalisations.
UNSUPPORTED = frozenset({"normalize_channels", "normalize_channels_softmax",
                         "normalize_channels_softmax_maxval"})
NAMES = frozenset(_MODULES) | frozenset(_FORMULAS)


class Formula(nn.Module):
    """An element-wise Darknet activation written out as its formula."""

    def __init__(self, name: str):
        super().__init__()
        self.darknet_name = name
        self._fn = _FORMULAS[name]

    def forward(self, x: Tensor) -> Tensor:
        return self._fn(x)

    def extra_repr(self) -> str:
        return self.darknet_name


def check_activation(name: str) -> None:
    """Raises KeyError for unknown names, UnsupportedModel for known-but-unsupported ones."""
    if name in UNSUPPORTED:
        raise UnsupportedModel(f"activation {name!r} (AlexeyAB channel normalisation) is not supported")
    if name not in NAMES:
        raise KeyError(name)


def make_activation(name: str) -> nn.Module:
    """A fresh module computing Darknet activation `name` (its `darknet_name` is set)."""
    check_activation(name)
    module = _MODULES[name]() if name in _MODULES else Formula(name)
    module.darknet_name = name
    return module


def apply_activation(name: str, x: Tensor) -> Tensor:
    """Functional form (tests, one-off use)."""
    return make_activation(name)(x)


__all__ = ["NAMES", "UNSUPPORTED", "Formula", "check_activation", "make_activation",
           "apply_activation"]
