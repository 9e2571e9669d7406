"""low_rank: SVD exact at full rank and optimal when truncated (Eckart–Young), Tucker-2 exact
on a kernel of exact multilinear rank, ranks chosen by energy / mac_reduction as worked by
hand, layers that would not gain kept with a reason, the input model untouched, Darknet
layers decomposed in place of their conv.

Tolerances: the factorizations are computed in float64 and stored in float32, so a product
of factors differs from the original weight by ~1e-7 relative, and a layer's output (sums of
≤ 300 products) by ~1e-6 of its magnitude: ATOL 1e-5 on outputs of magnitude ~1 leaves a 10x
margin, and a wrong factor (transposed, wrong rank) misses by orders of magnitude.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from infertune.errors import ConfigError
from infertune.passes import PASSES, PassContext, apply_passes
from infertune.passes import _decompose as d
from infertune.passes.base import config_from_options
from infertune.passes.low_rank import LowRankConfig, decompose_module
from infertune.types import InputSpec, ModelHandle

ATOL = 1e-5


def handle(net: nn.Module, chw=(4, 8, 8)) -> ModelHandle:
    return ModelHandle(format="torch", obj=net.eval(), input_spec=InputSpec(shape=(1, *chw)),
                       name="tiny", source="test")


def linear_with_singular_values(s: list[float], n_in: int, seed: int = 0) -> nn.Linear:
    """A Linear (len(s) × n_in) whose weight has exactly the singular values `s`."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((len(s), len(s))))[0]
    v = np.linalg.qr(rng.standard_normal((n_in, len(s))))[0]
    layer = nn.Linear(n_in, len(s))
    layer.weight.data = torch.from_numpy((u * np.asarray(s)) @ v.T).float()
    return layer


def test_svd_full_rank_is_exact():
    layer = nn.Linear(12, 8)
    new, _ = d.svd_linear(layer, 8)
    x = torch.randn(5, 12)
    assert torch.allclose(new(x), layer(x), atol=ATOL)
    conv = nn.Conv2d(6, 9, 1, stride=2, padding=1)
    new_conv, _ = d.svd_conv1x1(conv, 6)
    x = torch.randn(2, 6, 7, 7)
    assert torch.allclose(new_conv(x), conv(x), atol=ATOL)


def test_truncated_svd_is_the_best_rank_r_approximation():
    layer = nn.Linear(20, 10)
    w = layer.weight.detach().double().numpy()
    s = np.linalg.svd(w, compute_uv=False)
    for r in (1, 3, 7):
        new, _ = d.svd_linear(layer, r)
        approx = (new[1].weight.double() @ new[0].weight.double()).detach().numpy()
        err2 = ((w - approx) ** 2).sum()
        # Eckart–Young: the squared Frobenius error is the sum of the dropped s²;
        # rel 1e-5: the factors were rounded to float32 (~1e-7 each)
        assert err2 == pytest.approx((s[r:] ** 2).sum(), rel=1e-5)


def exact_tucker_kernel(c_out, c_in, r_out, r_in, k, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    core = rng.standard_normal((r_out, r_in, k, k))
    u_out = rng.standard_normal((c_out, r_out))
    u_in = rng.standard_normal((c_in, r_in))
    return d.tucker_kernel(core, u_out, u_in)


@pytest.mark.parametrize("hooi_iters", [0, 2])
def test_tucker2_exact_on_a_kernel_of_exact_multilinear_rank(hooi_iters):
    conv = nn.Conv2d(6, 10, 3, stride=2, padding=1, dilation=1)
    conv.weight.data = torch.from_numpy(exact_tucker_kernel(10, 6, 4, 3, 3)).float() / 10
    new, kept = d.tucker_conv(conv, 3, 4, hooi_iters=hooi_iters)
    assert [m.kernel_size for m in new] == [(1, 1), (3, 3), (1, 1)]
    assert (new[0].out_channels, new[1].out_channels, new[2].out_channels) == (3, 4, 10)
    x = torch.randn(2, 6, 9, 9)
    assert torch.allclose(new(x), conv(x), atol=ATOL)
    assert kept == pytest.approx(1.0, abs=1e-9)


def test_tucker2_dilated_conv_keeps_semantics():
    conv = nn.Conv2d(5, 7, 3, padding=2, dilation=2)
    conv.weight.data = torch.from_numpy(exact_tucker_kernel(7, 5, 3, 2, 3, seed=1)).float() / 10
    new, _ = d.tucker_conv(conv, 2, 3)
    x = torch.randn(1, 5, 10, 10)
    assert torch.allclose(new(x), conv(x), atol=ATOL)


def test_energy_rank_hand_computed():
    # s² = 16, 9, 4, 1 (total 30): cumulative 0.533, 0.833, 0.967, 1.0
    s = [4, 3, 2, 1]
    assert d.energy_rank(s, 0.5) == 1
    assert d.energy_rank(s, 0.8) == 2
    assert d.energy_rank(s, 0.9) == 3
    assert d.energy_rank(s, 29 / 30) == 3  # exactly the energy of the first 3
    assert d.energy_rank(s, 1.0) == 4


def test_energy_option_chooses_the_expected_rank_on_a_layer():
    # 16 × 64 Linear with singular values 8, 4, 2, 1, 0.1, ... : s² = 64, 16, 4, 1, 0.01...
    s = [8, 4, 2, 1] + [0.1] * 12
    net = nn.Sequential(linear_with_singular_values(s, 64))
    total = sum(v * v for v in s)
    # 0.95 of the energy: 64/total = 0.748, 80/total = 0.935, 84/total = 0.982 → rank 3
    assert 80 / total < 0.95 < 84 / total
    decomposed, skipped = decompose_module(net, (64,), LowRankConfig(energy=0.95, min_macs=0))
    assert not skipped
    assert decomposed[0]["rank"] == 3 and decomposed[0]["method"] == "svd"
    assert decomposed[0]["macs_before"] == 16 * 64 and decomposed[0]["macs_after"] == 3 * 80
    assert decomposed[0]["kept_energy"] == pytest.approx(84 / total, rel=1e-5)


def test_mac_reduction_hand_computed():
    # Linear 64 → 16: 1024 MACs; rank r costs 80 r. 50% cut: 80 r ≤ 512 → r = 6.
    assert d.svd_mac_rank(64, 16, 0.5) == 6
    # Conv 8 → 16, 3x3 on 10x10 (same size): 16·8·9·100 = 115,200 MACs. r_in = r_out/2
    # rounded half up; (r_in, r_out) costs 8·r_in·100 + (9·r_out·r_in + 16·r_out)·100:
    # (4, 8): 3,200 + 41,600 = 44,800; (5, 9): 4,000 + 54,900 = 58,900; (5, 10): 65,000.
    # 50% cut, budget 57,600 → (4, 8)
    assert d.tucker_mac_ranks(8, 16, 9, 100, 100, 0.5) == (4, 8)
    # 90% cut, budget 11,520: (1, 2) costs 5,800, (2, 3) 11,800 → (1, 2)
    assert d.tucker_mac_ranks(8, 16, 9, 100, 100, 0.9) == (1, 2)


def test_layers_that_would_not_gain_are_skipped_with_a_reason():
    # A 4 → 4 1x1 conv: even rank 1 costs 8 MACs per pixel of 16; energy 1.0 needs rank 4.
    net = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Conv2d(4, 32, 3, groups=4, padding=1),
                        nn.Conv2d(32, 4, 3, padding=1))
    decomposed, skipped = decompose_module(net, (4, 8, 8), LowRankConfig(energy=1.0, min_macs=0))
    assert not decomposed
    reasons = {s["layer"]: s["reason"] for s in skipped}
    assert "not fewer than" in reasons["0"]
    assert "grouped" in reasons["1"]
    assert "not fewer than" in reasons["2"]  # full multilinear rank (32, 4) costs more
    stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1))
    _, skipped = decompose_module(stem, (3, 8, 8), LowRankConfig(mac_reduction=0.5, min_macs=0))
    assert "input channels" in skipped[0]["reason"]
    _, skipped = decompose_module(net, (4, 8, 8), LowRankConfig(energy=0.5, min_macs=10**6))
    assert "min_macs" in skipped[0]["reason"]


def test_min_saving_skips_ranks_close_to_full():
    s = [1.0] * 16  # flat spectrum: 0.9 of the energy needs rank 15 of 16
    net = nn.Sequential(linear_with_singular_values(s, 256))
    _, skipped = decompose_module(net, (256,), LowRankConfig(energy=0.9, min_macs=0,
                                                             min_saving=0.5))
    # rank 15 costs 15·272 = 4080 of 4096 MACs: 0.4% saved
    assert skipped[0]["rank"] == 15 and "min_saving" in skipped[0]["reason"]


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(4, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(x.mean((2, 3)))


def test_pass_end_to_end_input_untouched_and_details(tmp_path):
    torch.manual_seed(0)
    h = handle(TinyNet())
    before = copy.deepcopy(h.obj.state_dict())
    out, reports = apply_passes(h, [("low_rank", {"mac_reduction": 0.5, "min_macs": 0})],
                                PassContext(workdir=tmp_path))
    r = reports[0]
    assert r["applied"] and r["macs_after"] < r["macs_before"]
    assert r["params_after"] < r["params_before"]
    assert all(torch.equal(v, h.obj.state_dict()[k]) for k, v in before.items())
    assert isinstance(h.obj.c2, nn.Conv2d) and not isinstance(out.obj.c2, nn.Conv2d)
    layers = {e["layer"]: e for e in r["decomposed"]}
    assert layers["c2"]["macs_after"] <= 0.5 * layers["c2"]["macs_before"]
    assert out.obj(torch.randn(2, 4, 8, 8)).shape == (2, 10)


def test_darknet_conv_is_decomposed_inside_its_layer(tmp_path):
    from infertune.load import load_model

    h = load_model("ref-small")
    conv = h.obj.layers[4].conv  # DarknetConv 32 → 64, 3x3: given multilinear rank (8, 16)
    conv.weight.data = torch.from_numpy(exact_tucker_kernel(64, 32, 16, 8, 3)).float() / 30
    out, reports = apply_passes(h, [("low_rank", {"energy": 1.0, "min_macs": 0})],
                                PassContext(workdir=tmp_path))
    # energy 1.0 finds the exact ranks, so the decomposition is exact (to float32 rounding)
    layers = {e["layer"]: e for e in reports[0]["decomposed"]}
    assert layers["layers.4.conv"]["rank"] == [8, 16]
    assert type(out.obj) is type(h.obj) and out.obj.layers[4].conv.out_channels == 64
    x = torch.randn(2, *h.input_spec.chw)
    with torch.no_grad():
        ref, got = h.obj(x), out.obj(x)
    assert torch.allclose(got, ref, atol=1e-4 * ref.abs().max())


def test_config_errors():
    spec = PASSES.get("low_rank")
    with pytest.raises(ConfigError, match="exactly one"):
        config_from_options(spec, {})
    with pytest.raises(ConfigError, match="exactly one"):
        config_from_options(spec, {"energy": "0.9", "mac_reduction": "0.5"})
    with pytest.raises(ConfigError, match="energy"):
        config_from_options(spec, {"energy": "1.5"})
    assert config_from_options(spec, {"mac_reduction": "0.5"}).mac_reduction == 0.5
