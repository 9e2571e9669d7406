"""prune_channels: real channel removal through the dependency graph (route/concat, shortcut,
depthwise, flatten→Linear), exact on the channels kept, golden criteria, options, ONNX.

Exactness design: in a tiny Darknet cfg the channels the pass must remove are made *inert*
(their BatchNorm γ = β = 0, so they output exactly 0 after leaky; their filters scaled by 1e-3
so that l1 ranks them last). Removing them then changes nothing, so the pruned network's
output must equal the original's; a kept wrong index or a misaligned consumer input (route
offsets, shortcut group, depthwise, Linear features × spatial size) changes it by O(1).
Tolerance: only float32 summation order differs (fewer terms), ~1e-6 relative; RTOL 1e-4,
ATOL 1e-5 · max|y|.
"""
from __future__ import annotations

import types

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from infertune.errors import ConfigError
from infertune.export import export_onnx
from infertune.load import load_model
from infertune.passes import PASSES, PassContext, apply_passes
from infertune.passes.base import config_from_options
from infertune.profile import profile_model
from infertune.types import InputSpec, ModelHandle

RTOL, ATOL_REL = 1e-4, 1e-5

_CONV = "[convolutional]\nbatch_normalize=1\nfilters={f}\nsize={k}\nstride=1\npad=1\n{extra}activation=leaky\n\n"
# 0 conv16, 1 depthwise, 2 conv16, 3 shortcut(2 + 0), 4 conv16, 5 route(4, 3) = 32 channels,
# 6 conv24, 7 maxpool 16x16 -> 8x8, 8 connected 10 (flatten: 24·64 inputs), the output.
GRAPH_CFG = ("[net]\nwidth=16\nheight=16\nchannels=3\n\n"
             + _CONV.format(f=16, k=3, extra="") + _CONV.format(f=16, k=3, extra="groups=16\n")
             + _CONV.format(f=16, k=1, extra="") + "[shortcut]\nfrom=-3\nactivation=linear\n\n"
             + _CONV.format(f=16, k=3, extra="") + "[route]\nlayers=-1,-2\n\n"
             + _CONV.format(f=24, k=3, extra="") + "[maxpool]\nsize=2\nstride=2\n\n"
             + "[connected]\noutput=10\nactivation=linear\n")
REORG_CFG = ("[net]\nwidth=16\nheight=16\nchannels=3\n\n" + _CONV.format(f=16, k=3, extra="")
             + _CONV.format(f=16, k=3, extra="") + "[reorg]\nstride=2\n\n"
             + _CONV.format(f=16, k=1, extra="") + "[route]\nlayers=-1,-2\n\n"
             + "[convolutional]\nfilters=5\nsize=1\nstride=1\npad=1\nactivation=linear\n\n[avgpool]\n")


def _prune(handle, tmp_path, **options):
    spec = PASSES.get("prune_channels")
    config = config_from_options(spec, options)
    return spec.apply(handle, config, PassContext(workdir=tmp_path))


def _load_cfg(tmp_path, text, name="net.cfg"):
    path = tmp_path / name
    path.write_text(text)
    return load_model(str(path))


def _make_inert(net, layer, dead):
    """Channels `dead` of Darknet conv `layer` output exactly 0 and have the smallest l1."""
    m = net.layers[layer]
    with torch.no_grad():
        m.bn.weight[dead] = 0.0
        m.bn.bias[dead] = 0.0
        m.conv.weight[dead] *= 1e-3


@pytest.fixture()
def inert_graph(tmp_path):
    handle = _load_cfg(tmp_path, GRAPH_CFG)
    rng = np.random.default_rng(0)
    dead_a = np.sort(rng.choice(16, 8, replace=False))  # shortcut group: layers 0, 2 (and dw 1)
    dead_b = np.sort(rng.choice(16, 8, replace=False))  # layer 4
    dead_c = np.sort(rng.choice(24, 8, replace=False))  # layer 6: 24 -> 16 kept (round_to 8)
    for layer, dead in ((0, dead_a), (1, dead_a), (2, dead_a), (4, dead_b), (6, dead_c)):
        _make_inert(handle.obj, layer, dead)
    return handle, {0: dead_a, 2: dead_a, 4: dead_b, 6: dead_c}


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL_REL * np.abs(b).max())


def test_route_shortcut_depthwise_linear_exact(inert_graph, tmp_path):
    handle, dead = inert_graph
    state = {k: v.clone() for k, v in handle.obj.state_dict().items()}
    result = _prune(handle, tmp_path, ratio="0.5")
    assert result.applied, result.reason
    net = result.model.obj
    L = net.layers
    assert [L[i].conv.out_channels for i in (0, 2, 4, 6)] == [8, 8, 8, 16]
    assert L[1].conv.groups == L[1].conv.in_channels == L[1].conv.out_channels == 8
    assert L[6].conv.in_channels == 16  # route: 8 (layer 4) + 8 (shortcut)
    assert L[8].fc.in_features == 16 * 8 * 8 and L[8].fc.out_features == 10  # output kept
    assert L[6].out_shape == (16, 16, 16) and L[8].in_shape == (16, 8, 8)
    for i, d in dead.items():  # the kept filters are exactly the live ones
        live = np.setdiff1d(np.arange(state[f"layers.{i}.conv.weight"].shape[0]), d)
        torch.testing.assert_close(L[i].bn.weight, state[f"layers.{i}.bn.weight"][live])
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _close(net(x), handle.obj(x))
    rows = {r["layer"]: r for r in result.details["layers"]}
    assert rows["layers.6"]["channels_before"] == 24 and rows["layers.6"]["channels_after"] == 16
    assert result.details["macs_after"] < result.details["macs_before"]
    assert result.details["params_after"] < result.details["params_before"]
    assert profile_model(result.model)["params"] == result.details["params_after"]
    for k, v in handle.obj.state_dict().items():  # input model untouched
        assert torch.equal(v, state[k]), k


def test_pruned_darknet_exports_to_onnx(inert_graph, tmp_path):
    handle, _ = inert_graph
    pruned = _prune(handle, tmp_path, ratio="0.5").model
    out = tmp_path / "pruned.onnx"
    export_onnx(pruned, out)
    x = np.random.default_rng(2).standard_normal((2, 3, 16, 16)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        _close(y, handle.obj(torch.from_numpy(x)).numpy())


def test_reorg_inputs_kept_consumers_aligned(tmp_path):
    handle = _load_cfg(tmp_path, REORG_CFG)
    result = _prune(handle, tmp_path, ratio="0.5")
    L = result.model.obj.layers
    assert L[1].conv.out_channels == 16  # feeds [reorg]: channels mix with rows there
    assert any("reorg" in s["reason"] or "layers.2" in s["reason"] for s in result.details["skipped"])
    assert L[0].conv.out_channels == 8 and L[3].conv.out_channels == 8
    assert L[5].conv.in_channels == 8 + 64  # route(conv3, reorg output: all kept)
    x = torch.randn(2, 3, 16, 16)
    assert result.model.obj(x).shape == handle.obj(x).shape


def _hand_layer():
    """Conv 3→6 whose filter norms are chosen so that l1 and l2 rank differently."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.Conv2d(6, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    w = np.zeros((6, 3, 3, 3), np.float32)
    w[0].flat[0] = 3.0          # l1 3.0, l2 3.0
    w[1] = 0.2                  # l1 5.4, l2 1.04
    w[2].flat[:4] = 1.0         # l1 4.0, l2 2.0
    w[3].flat[:2] = -0.5        # l1 1.0, l2 0.71
    w[4].flat[:9] = 0.5         # l1 4.5, l2 1.5
    w[5].flat[:1] = -2.5        # l1 2.5, l2 2.5
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w))
        model[1].weight.copy_(torch.tensor([0.1, -2.0, 0.5, 3.0, -0.05, 1.0]))
    handle = ModelHandle("torch", InputSpec(shape=("batch", 3, 8, 8)), "hand", "test", obj=model)
    return handle, w, model[1].weight.detach().numpy().copy()


@pytest.mark.parametrize("criterion", ["l1", "l2", "bn"])
def test_criteria_pick_golden_filters(criterion, tmp_path):
    handle, w, gamma = _hand_layer()
    score = {"l1": np.abs(w).reshape(6, -1).sum(1), "l2": np.sqrt((w ** 2).reshape(6, -1).sum(1)),
             "bn": np.abs(gamma)}[criterion]
    golden = np.sort(np.argsort(-score)[:3])  # ratio 0.5 of 6, round_to 1: keep 3
    result = _prune(handle, tmp_path, ratio="0.5", criterion=criterion, round_to="1")
    kept_w = result.model.obj[0].weight.detach().numpy()
    np.testing.assert_array_equal(kept_w, w[golden])
    np.testing.assert_array_equal(result.model.obj[1].weight.detach().numpy(), gamma[golden])
    assert result.model.obj[3].weight.shape == (4, 3, 1, 1)


def test_criteria_goldens_differ():
    # Guards the test above: if l1 and l2 picked the same filters it could not tell them apart.
    _, w, gamma = _hand_layer()
    l1 = set(np.argsort(-np.abs(w).reshape(6, -1).sum(1))[:3])
    l2 = set(np.argsort(-np.sqrt((w ** 2).reshape(6, -1).sum(1)))[:3])
    bn = set(np.argsort(-np.abs(gamma))[:3])
    assert l1 != l2 and l1 != bn and l2 != bn


def test_taylor_uses_data(tmp_path):
    handle, _, _ = _hand_layer()
    rng = np.random.default_rng(0)
    data = types.SimpleNamespace(x=rng.standard_normal((16, 3, 8, 8)).astype(np.float32), y=None)
    spec = PASSES.get("prune_channels")
    config = config_from_options(spec, {"ratio": "0.5", "criterion": "taylor", "round_to": "1"})
    result = spec.apply(handle, config, PassContext(workdir=tmp_path, calibration=data))
    assert result.applied and result.model.obj[0].out_channels == 3
    with pytest.raises(ConfigError, match="taylor needs data"):
        spec.apply(handle, config, PassContext(workdir=tmp_path))


@pytest.mark.parametrize("ratio,n,expected", [(0.5, 16, 8), (0.3, 32, 24), (0.75, 16, 8),
                                              (0.1, 24, 24), (0.6, 40, 16)])
def test_round_to(ratio, n, expected, tmp_path):
    model = nn.Sequential(nn.Conv2d(3, n, 3), nn.ReLU(), nn.Conv2d(n, 2, 1)).eval()
    handle = ModelHandle("torch", InputSpec(shape=("batch", 3, 8, 8)), "m", "test", obj=model)
    result = _prune(handle, tmp_path, ratio=str(ratio), round_to="8")
    assert result.model.obj[0].out_channels == expected
    assert result.model.obj[2].in_channels == expected and result.model.obj[2].out_channels == 2


def test_global_scope_caps_each_layer(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
                          nn.Conv2d(32, 2, 1)).eval()
    with torch.no_grad():
        model[2].weight[:20].mul_(1e-3)  # 20 weak filters in layer 2: global takes more there
    handle = ModelHandle("torch", InputSpec(shape=("batch", 3, 12, 12)), "m", "test", obj=model)
    result = _prune(handle, tmp_path, ratio="0.5", scope="global", round_to="1",
                    max_layer_ratio="0.6")
    after = [result.model.obj[i].out_channels for i in (0, 2)]
    assert all(c >= 32 - int(32 * 0.6) for c in after)  # the per-layer guard
    assert sum(after) <= 64 - 30  # about half of all 64 channels removed
    assert after[1] < after[0]  # the weak layer gives more (one threshold, not one ratio)


def test_ratio_zero_and_bad_options(tmp_path):
    handle, _, _ = _hand_layer()
    result = _prune(handle, tmp_path, ratio="0")
    assert not result.applied and result.model is handle
    spec = PASSES.get("prune_channels")
    for bad in ({"ratio": "1.0"}, {"ratio": "-0.1"}, {"criterion": "l3"}, {"round_to": "0"},
                {"scope": "net"}, {"ratio": "half"}):
        with pytest.raises(ConfigError):
            config_from_options(spec, bad)


def test_ignore_keeps_layer(tmp_path):
    handle, _, _ = _hand_layer()
    result = _prune(handle, tmp_path, ratio="0.5", round_to="1", ignore="0")
    assert not result.applied and "ignored" in result.details["skipped"][0]["reason"]


@pytest.mark.parametrize("zoo", ["resnet18", "mobilenet_v2"])
def test_zoo_models_prune_and_run(zoo, tmp_path):
    handle = load_model(zoo)
    handle = ModelHandle("torch", handle.input_spec.with_hw(32, 32), zoo, zoo, obj=handle.obj)
    result = _prune(handle, tmp_path, ratio="0.5")
    assert result.applied
    assert result.details["macs_after"] < 0.6 * result.details["macs_before"]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert result.model.obj(x).shape == (1, 1000)
    names = {s["layers"][0] for s in result.details["skipped"]}
    assert {"fc" if zoo == "resnet18" else "classifier.1"} <= names  # classifier kept


def test_apply_passes_pipeline(inert_graph, tmp_path):
    handle, _ = inert_graph
    model, reports = apply_passes(handle, [("prune_channels", {"ratio": "0.5"})],
                                  PassContext(workdir=tmp_path))
    assert reports[0]["applied"] and reports[0]["bytes_after"] < reports[0]["bytes_before"]
    assert model.obj.layers[6].conv.out_channels == 16
