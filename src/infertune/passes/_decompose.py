"""The arithmetic of `low_rank`: truncated SVD, Tucker-2 by HOSVD (+ optional HOOI), rank
choice, and the modules that replace a layer. Imported only when the pass runs.

Truncated SVD (Eckart–Young): W (out × in) ≈ (U_r·S_r)(V_rᵀ) is the best rank-r
approximation in the Frobenius norm, its squared error the sum of the dropped s². A Linear
or 1x1 conv becomes two: in → r (Vᵀ, no bias), then r → out (U·S, the original bias).

Tucker-2 on the channel modes of a k×k kernel W (C_out, C_in, k, k):
    W ≈ G ×₀ U_out ×₁ U_in,  G = W ×₀ U_outᵀ ×₁ U_inᵀ  (r_out, r_in, k, k)
with U_out / U_in the leading left singular vectors of W's mode-0 / mode-1 unfoldings
(HOSVD). Because convolution is linear in the channels, conv(x, W) = U_out·conv(U_inᵀ·x, G):
a 1x1 conv C_in → r_in (no bias: zero padding stays zero), the k×k conv r_in → r_out with the
original stride/padding/dilation, and a 1x1 conv r_out → C_out with the original bias.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn


def energy_rank(singular_values: Sequence[float], energy: float) -> int:
    """The smallest r whose leading singular values hold `energy` of Σ s² (at least 1)."""
    s2 = np.asarray(singular_values, dtype=np.float64) ** 2
    total = s2.sum()
    if total <= 0:
        return 1
    cum = np.cumsum(s2) / total
    # 1e-12: cumulative sums of float64 squares can land a hair below an exact target
    return int(min(len(s2), np.searchsorted(cum, energy - 1e-12) + 1))


def kept_energy(singular_values: Sequence[float], rank: int) -> float:
    """Fraction of Σ s² held by the leading `rank` singular values."""
    s2 = np.asarray(singular_values, dtype=np.float64) ** 2
    return float(s2[:rank].sum() / s2.sum()) if s2.sum() > 0 else 1.0


def svd_macs(c_in: int, c_out: int, rank: int, positions: int) -> int:
    """MACs of in → rank → out at `positions` output positions (pixels, or 1 for a Linear)."""
    return rank * (c_in + c_out) * positions


def svd_mac_rank(c_in: int, c_out: int, mac_reduction: float) -> int:
    """The largest rank whose two layers cost at most (1 − mac_reduction) of in·out (≥ 1)."""
    return max(1, math.floor((1.0 - mac_reduction) * c_in * c_out / (c_in + c_out) + 1e-9))


def tucker_macs(c_in: int, c_out: int, k2: int, r_in: int, r_out: int, in_pixels: int,
                out_pixels: int) -> int:
    """MACs of 1x1 (C_in→r_in, input resolution) + k×k (r_in→r_out) + 1x1 (r_out→C_out)."""
    return r_in * c_in * in_pixels + (r_out * r_in * k2 + c_out * r_out) * out_pixels


def tucker_mac_ranks(c_in: int, c_out: int, k2: int, in_pixels: int, out_pixels: int,
                     mac_reduction: float) -> tuple[int, int]:
    """(r_in, r_out) in the channels' proportion, the largest costing ≤ (1 − reduction)·original."""
    budget = (1.0 - mac_reduction) * c_out * c_in * k2 * out_pixels
    best = (1, 1)
    for r_out in range(1, c_out + 1):
        r_in = max(1, min(c_in, math.floor(r_out * c_in / c_out + 0.5)))  # half up
        if tucker_macs(c_in, c_out, k2, r_in, r_out, in_pixels, out_pixels) <= budget:
            best = (r_in, r_out)
    return best


# --------------------------------------------------------------------------- factorizations


def svd_factors(weight: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first (rank × in), second (out × rank), singular values) of W (out × in), float64.

    √S is split between the two factors so that both have comparable magnitudes (better
    conditioned for fine-tuning and for INT8 afterwards than putting S on one side).
    """
    u, s, vt = np.linalg.svd(weight.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    return root[:, None] * vt[:rank], u[:, :rank] * root[None, :], s


def unfold(kernel: np.ndarray, mode: int) -> np.ndarray:
    """Mode-`mode` unfolding of a 4-D kernel: that axis as rows, the rest as columns."""
    return np.moveaxis(kernel, mode, 0).reshape(kernel.shape[mode], -1)


def mode_singular_values(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values of the output (mode 0) and input (mode 1) channel unfoldings."""
    k = kernel.astype(np.float64)
    return (np.linalg.svd(unfold(k, 0), compute_uv=False),
            np.linalg.svd(unfold(k, 1), compute_uv=False))


def _leading(matrix: np.ndarray, rank: int) -> np.ndarray:
    return np.linalg.svd(matrix, full_matrices=False)[0][:, :rank]


def tucker2(kernel: np.ndarray, r_in: int, r_out: int,
            hooi_iters: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(core (r_out, r_in, k, k), U_out (C_out × r_out), U_in (C_in × r_in)), float64.

    HOSVD gives the factors; each HOOI iteration re-fits one factor to the kernel projected
    on the other (never worse in Frobenius error than HOSVD, usually slightly better).
    """
    w = kernel.astype(np.float64)
    u_out, u_in = _leading(unfold(w, 0), r_out), _leading(unfold(w, 1), r_in)
    for _ in range(hooi_iters):
        u_out = _leading(unfold(np.einsum("oikl,ib->obkl", w, u_in, optimize=True), 0), r_out)
        u_in = _leading(unfold(np.einsum("oikl,oa->aikl", w, u_out, optimize=True), 1), r_in)
    # optimize=True contracts one factor at a time; the naive 3-operand loop is
    # O(C_out·C_in·k²·r_out·r_in) and takes minutes on a 512-channel layer
    core = np.einsum("oikl,oa,ib->abkl", w, u_out, u_in, optimize=True)
    return core, u_out, u_in


def tucker_kernel(core: np.ndarray, u_out: np.ndarray, u_in: np.ndarray) -> np.ndarray:
    """G ×₀ U_out ×₁ U_in: the kernel a Tucker-2 factorization stands for."""
    return np.einsum("abkl,oa,ib->oikl", core, u_out, u_in, optimize=True)


# --------------------------------------------------------------------------- modules


class LowRankLinear(nn.Sequential):
    """in → rank → out (two Linears); keeps in/out_features for code that reads them
    (Darknet's connected layer reshapes with `fc.out_features`)."""

    def __init__(self, first: nn.Linear, second: nn.Linear):
        super().__init__(first, second)
        self.in_features, self.out_features = first.in_features, second.out_features


class LowRankConv(nn.Sequential):
    """A conv replaced by 2 (SVD) or 3 (Tucker-2) convs; keeps in/out_channels for code
    that reads them (Darknet's antialiasing blur uses `conv.out_channels`)."""

    def __init__(self, *convs: nn.Conv2d):
        super().__init__(*convs)
        self.in_channels, self.out_channels = convs[0].in_channels, convs[-1].out_channels


def _tensor(array: np.ndarray, like: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(array)).to(like.dtype))


def _bias(layer: nn.Module) -> torch.Tensor | None:
    return None if layer.bias is None else layer.bias.detach().clone()


def svd_linear(layer: nn.Linear, rank: int) -> tuple[LowRankLinear, np.ndarray]:
    """The two-Linear replacement at `rank` and W's singular values."""
    w = layer.weight.detach()
    first_w, second_w, s = svd_factors(w.cpu().numpy(), rank)
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    first.weight, second.weight = _tensor(first_w, w), _tensor(second_w, w)
    if layer.bias is not None:
        second.bias = nn.Parameter(_bias(layer))
    return LowRankLinear(first, second), s


def svd_conv1x1(layer: nn.Conv2d, rank: int) -> tuple[LowRankConv, np.ndarray]:
    """The two-conv replacement of a 1x1 conv (stride and padding on the first) and W's s."""
    w = layer.weight.detach()
    first_w, second_w, s = svd_factors(w.cpu().numpy()[:, :, 0, 0], rank)
    first = nn.Conv2d(layer.in_channels, rank, 1, stride=layer.stride, padding=layer.padding,
                      bias=False)
    second = nn.Conv2d(rank, layer.out_channels, 1, bias=layer.bias is not None)
    first.weight = _tensor(first_w[:, :, None, None], w)
    second.weight = _tensor(second_w[:, :, None, None], w)
    if layer.bias is not None:
        second.bias = nn.Parameter(_bias(layer))
    return LowRankConv(first, second), s


def tucker_conv(layer: nn.Conv2d, r_in: int, r_out: int,
                hooi_iters: int = 0) -> tuple[LowRankConv, float]:
    """The three-conv Tucker-2 replacement and the fraction of ‖W‖² it keeps."""
    w = layer.weight.detach()
    kernel = w.cpu().numpy().astype(np.float64)
    core, u_out, u_in = tucker2(kernel, r_in, r_out, hooi_iters)
    first = nn.Conv2d(layer.in_channels, r_in, 1, bias=False)
    middle = nn.Conv2d(r_in, r_out, layer.kernel_size, stride=layer.stride,
                       padding=layer.padding, dilation=layer.dilation, bias=False)
    last = nn.Conv2d(r_out, layer.out_channels, 1, bias=layer.bias is not None)
    first.weight = _tensor(u_in.T[:, :, None, None], w)
    middle.weight = _tensor(core, w)
    last.weight = _tensor(u_out[:, :, None, None], w)
    if layer.bias is not None:
        last.bias = nn.Parameter(_bias(layer))
    # orthonormal factors: the approximation is a projection, so ‖G‖² is the energy kept
    total = float((kernel ** 2).sum())
    return LowRankConv(first, middle, last), float((core ** 2).sum() / total) if total else 1.0
