"""fold_bn: structure (no BatchNorm left), numerics (allclose, an exact rewrite), Darknet's
two epsilon conventions, the input model untouched, "does not apply" results, ONNX graphs.

Tolerance: the fold is exact in real arithmetic; in float32 the folded weights w·γ/σ are
rounded once (~6e-8 relative) and the conv sums them in another order, so outputs move by
~1e-6 of their magnitude. RTOL 1e-5 with ATOL 1e-5·max|y| leaves a 10x margin. With the
small variances used here (1e-4..1e-3) the two Darknet conventions differ by 5e-6/var,
0.5-5% relative: a fold with the wrong epsilon misses by ~1000x the tolerance.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from infertune.errors import ConfigError
from infertune.export import export_onnx
from infertune.load import load_model
from infertune.passes import PASSES, PassContext, apply_passes
from infertune.passes.base import config_from_options
from infertune.types import InputSpec, ModelHandle

RTOL = 1e-5
ATOL_REL = 1e-5  # times max |reference output|

TINY_CFG = """[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=6
size=3
stride=1
pad=1
activation=linear

[convolutional]
filters=5
size=1
stride=1
pad=1
activation=linear

[avgpool]
"""


def randomize_bn(module: nn.Module, seed: int = 0, var_range=(1e-4, 1e-3)) -> None:
    """BN statistics where the Darknet conventions differ measurably (small variances)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            lo, hi = var_range
            m.running_var.copy_(lo + (hi - lo) * torch.rand(n, generator=g))
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=g))


def darknet(tmp_path, bn_eps: str) -> ModelHandle:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    handle = load_model(str(cfg), bn_eps=bn_eps)
    randomize_bn(handle.obj)
    return handle


def fold(handle: ModelHandle, tmp_path) -> tuple[ModelHandle, dict]:
    model, reports = apply_passes(handle, [("fold_bn", {})], PassContext(workdir=tmp_path / "work"))
    return model, reports[-1]


def run(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


def assert_close(got: torch.Tensor, ref: torch.Tensor) -> None:
    torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL_REL * float(ref.abs().max()))


def bn_count(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("bn_eps,other", [("cpu", "gpu"), ("gpu", "cpu")])
def test_darknet_fold_honours_its_epsilon(tmp_path, bn_eps, other):
    handle = darknet(tmp_path, bn_eps)
    ref = run(handle.obj, X)
    folded, report = fold(handle, tmp_path)
    assert report["applied"] and report["layers_folded"] == 2 and report["bn_eps"] == bn_eps
    assert bn_count(folded.obj) == 0
    assert all(layer.bn is None for layer in folded.obj.layers if hasattr(layer, "bn"))
    got = run(folded.obj, X)
    assert_close(got, ref)
    # The same weights folded with the other convention miss the reference by far more.
    twin = load_model(str(tmp_path / "tiny.cfg"), bn_eps=other)
    twin.obj.load_state_dict(handle.obj.state_dict())
    wrong = run(fold(twin, tmp_path)[0].obj, X)
    tolerance = RTOL * float(ref.abs().max()) + ATOL_REL * float(ref.abs().max())
    assert float((wrong - ref).abs().max()) > 100 * tolerance
    assert float((got - ref).abs().max()) < tolerance


def test_input_model_untouched(tmp_path):
    handle = darknet(tmp_path, "cpu")
    before = {k: v.clone() for k, v in handle.obj.state_dict().items()}
    folded, _ = fold(handle, tmp_path)
    after = handle.obj.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert bn_count(handle.obj) == 2 and folded.obj is not handle.obj
    assert folded.meta["bn_folded"] == 2 and "bn_folded" not in handle.meta


def test_resnet18_folded(tmp_path):
    handle = load_model("resnet18", input_size=(32, 32))
    randomize_bn(handle.obj, var_range=(0.5, 2.0))
    before = {k: v.clone() for k, v in handle.obj.state_dict().items()}
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    ref = run(handle.obj, x)
    folded, report = fold(handle, tmp_path)
    assert report["layers_folded"] == 20 and report["method"] == "torch.fx"
    assert bn_count(folded.obj) == 0 and bn_count(handle.obj) == 20
    assert_close(run(folded.obj, x), ref)
    assert all(torch.equal(before[k], v) for k, v in handle.obj.state_dict().items())
    assert report["bytes_after"] < report["bytes_before"]  # BN buffers gone, biases added


def test_no_batchnorm_does_not_apply(tmp_path):
    handle = ModelHandle("torch", InputSpec(shape=("batch", 3, 8, 8)), "plain", "test",
                         obj=nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval())
    model, report = fold(handle, tmp_path)
    assert not report["applied"] and report["reason"] == "no BatchNorm layers to fold"
    assert model is handle


class SharedOutput(nn.Module):
    """conv1's output goes to its BN and to the sum: folding would change the sum."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv1(x)
        z = self.bn1(y) + y
        return self.bn2(self.conv2(z))


def test_conv_with_other_users_is_kept_with_reason(tmp_path):
    module = SharedOutput().eval()
    randomize_bn(module, var_range=(0.5, 2.0))
    handle = ModelHandle("torch", InputSpec(shape=("batch", 3, 8, 8)), "shared", "test", obj=module)
    x = torch.randn(2, 3, 8, 8)
    folded, report = fold(handle, tmp_path)
    assert report["folded"] == [{"conv": "conv2", "bn": "bn2"}]
    assert report["skipped"][0]["layer"] == "bn1"
    assert "also goes to" in report["skipped"][0]["reason"]
    assert_close(run(folded.obj, x), run(module, x))


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())

    def forward(self, x):
        return self.body(x) if float(x.sum()) > -1e9 else x


def test_sequential_walk_when_fx_fails(tmp_path):
    module = Untraceable().eval()
    randomize_bn(module, var_range=(0.5, 2.0))
    handle = ModelHandle("torch", InputSpec(shape=("batch", 3, 8, 8)), "untraceable", "test",
                         obj=module)
    folded, report = fold(handle, tmp_path)
    assert report["method"].startswith("nn.Sequential walk") and report["layers_folded"] == 1
    x = torch.randn(2, 3, 8, 8)
    assert_close(run(folded.obj, x), run(module, x))


def test_onnx_darknet_cpu_export_folds(tmp_path):
    """Darknet's BatchNormCPU computes its variance in forward, so the exporter cannot fold
    it and writes BatchNormalization nodes (var = (sqrt(v)+1e-6)², epsilon 0); folding them
    in the graph keeps the outputs. (A plain BatchNorm2d is folded by the exporter itself.)"""
    handle = darknet(tmp_path, "cpu")
    export_onnx(handle, tmp_path / "tiny.onnx")
    onnx_handle = load_model(str(tmp_path / "tiny.onnx"))
    folded, report = fold(onnx_handle, tmp_path)
    assert report["layers_folded"] == 2
    ops = [n.op_type for n in onnx.load(folded.path).graph.node]
    assert "BatchNormalization" not in ops and "BatchNormalization" in \
        [n.op_type for n in onnx.load(onnx_handle.path).graph.node]  # the input file kept its BN
    session = ort.InferenceSession(folded.path, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: X.numpy()})[0])
    assert_close(got, run(handle.obj, X))


def tiny_onnx(path) -> None:
    """x → Conv → BN → Relu → Add(x') → BN → y: the second BN follows an Add, not a Conv."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")]
    for prefix in ("a", "b"):
        for name, value in (("g", 1 + rng.random(4)), ("b", rng.standard_normal(4)),
                            ("m", rng.standard_normal(4)), ("v", 0.5 + rng.random(4))):
            inits.append(numpy_helper.from_array(value.astype(np.float32), f"{prefix}{name}"))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("BatchNormalization", ["c", "ag", "ab", "am", "av"], ["n"], name="bn1",
                              epsilon=1e-3),
             helper.make_node("Relu", ["n"], ["r"]), helper.make_node("Add", ["r", "r"], ["s"]),
             helper.make_node("BatchNormalization", ["s", "bg", "bb", "bm", "bv"], ["y"], name="bn2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 8, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_onnx_graph_fold_and_skip(tmp_path):
    tiny_onnx(tmp_path / "g.onnx")
    handle = load_model(str(tmp_path / "g.onnx"))
    folded, report = fold(handle, tmp_path)
    assert report["folded"] == [{"conv": "conv", "bn": "bn1"}]
    assert report["skipped"] == [{"layer": "bn2", "reason": "its input is not a Conv (Add)"}]
    assert [n.op_type for n in onnx.load(folded.path).graph.node].count("BatchNormalization") == 1
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    ref, got = (ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
                for p in (handle.path, folded.path))
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL_REL * np.abs(ref).max())


def test_exported_resnet_has_nothing_to_fold(tmp_path):
    handle = load_model("resnet18", input_size=(32, 32))
    export_onnx(handle, tmp_path / "r.onnx")
    model, report = fold(load_model(str(tmp_path / "r.onnx")), tmp_path)
    assert not report["applied"] and "exporter already folds" in report["reason"]


def test_fold_bn_takes_no_options():
    with pytest.raises(ConfigError, match="pass fold_bn: unknown option 'eps'"):
        config_from_options(PASSES.get("fold_bn"), {"eps": "1e-5"})
    assert dataclasses.fields(PASSES.get("fold_bn").config) == ()
