"""fuse_activation: torch (BN folded, conv→act as one in-place ConvAct module) and ONNX
(ONNX Runtime FusedConv, an ORT-only artifact that other runtimes refuse).

Tolerance: BN folding rounds the weights once (~1e-6 relative on the outputs); an in-place
activation and ORT's FusedConv compute the same values. RTOL 1e-5, ATOL 1e-5·max|y|.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from infertune.export import export_onnx
from infertune.load import load_model
from infertune.passes import PassContext, apply_passes
from infertune.passes._torch_graph import ConvAct
from infertune.runtimes import RUNTIMES
from infertune.types import InputSpec, ModelHandle

RTOL, ATOL_REL = 1e-5, 1e-5

CFG = """[net]
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

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=mish

[convolutional]
filters=4
size=1
stride=1
pad=1
activation=relu

[avgpool]
"""


class Tiny(nn.Module):
    """conv-BN-LeakyReLU (fusable); conv→ReLU where the ReLU module is also used after an
    add (shared: kept); conv→Sigmoid (no in-place form: kept)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.1))
        self.b, self.relu = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        self.c, self.sig = nn.Conv2d(8, 4, 1), nn.Sigmoid()

    def forward(self, x):
        x = self.a(x)
        x = self.relu(self.relu(self.b(x)) + x)
        return self.sig(self.c(x))


def handle_of(module: nn.Module, hw: int = 16) -> ModelHandle:
    return ModelHandle("torch", InputSpec(shape=("batch", 3, hw, hw)), "tiny", "test", obj=module.eval())


def fuse(handle: ModelHandle, tmp_path, **options):
    model, reports = apply_passes(handle, [("fuse_activation", options)],
                                  PassContext(workdir=tmp_path / "work"))
    return model, reports[-1]


def outputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


def assert_close(got, ref) -> None:
    torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL_REL * float(ref.abs().max()))


X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_torch_fuses_what_is_safe_and_says_why_not(tmp_path):
    torch.manual_seed(0)
    module = Tiny().eval()
    module.a[1].running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    fused, report = fuse(handle_of(module), tmp_path)
    assert report["applied"] and report["fused_pairs"] == 1 and report["layers_folded"] == 1
    assert isinstance(fused.obj.a[0], ConvAct) and isinstance(fused.obj.a[2], nn.Identity)
    assert fused.obj.a[0].act.inplace and not module.a[2].inplace
    reasons = {s["layer"]: s["reason"] for s in report["skipped"]}
    assert "called 2 times" in reasons["relu"] and "no in-place form" in reasons["sig"]
    assert_close(outputs(fused.obj, X), outputs(module, X))
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert not any(isinstance(m, ConvAct) for m in module.modules())


def test_darknet_layers_fuse_and_still_export(tmp_path):
    (tmp_path / "t.cfg").write_text(CFG)
    handle = load_model(str(tmp_path / "t.cfg"))
    fused, report = fuse(handle, tmp_path)
    # leaky and relu have in-place forms; Darknet's mish is nn.Mish (in-place capable too)
    assert report["fused_pairs"] == 3 and report["layers_folded"] == 2
    assert all(isinstance(layer.conv, ConvAct) for layer in fused.obj.layers if hasattr(layer, "conv"))
    assert_close(outputs(fused.obj, X), outputs(handle.obj, X))
    summary = export_onnx(fused, tmp_path / "fused.onnx")  # checks ORT against the module
    assert summary["max_abs_diff"] <= summary["tolerance"]


def test_onnx_becomes_fusedconv_for_onnxruntime_only(tmp_path):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                           nn.LeakyReLU(0.1), nn.Conv2d(8, 4, 1)).eval()
    export_onnx(handle_of(module), tmp_path / "m.onnx")
    handle = load_model(str(tmp_path / "m.onnx"))
    fused, report = fuse(handle, tmp_path)
    ops = [n.op_type for n in onnx.load(fused.path).graph.node]
    assert report["fused_pairs"] == 2 and ops.count("FusedConv") == 2 and ops.count("Conv") == 1
    assert "Relu" not in ops and "LeakyRelu" not in ops
    assert fused.meta["runtime_only"] == "onnxruntime" and "runtime_only" not in handle.meta
    session = ort.InferenceSession(fused.path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: X.numpy()})[0]
    assert_close(torch.from_numpy(got), outputs(module, X))
    assert "only runs on onnxruntime" in RUNTIMES.get("openvino").incompatible(fused)
    assert RUNTIMES.get("onnxruntime").incompatible(fused) is None


def test_onnx_without_pairs_does_not_apply(tmp_path):
    export_onnx(handle_of(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())), tmp_path / "p.onnx")
    handle = load_model(str(tmp_path / "p.onnx"))
    model, report = fuse(handle, tmp_path)
    assert not report["applied"] and "no Conv followed by an activation" in report["reason"]
    assert model is handle


def test_no_bn_fold_option(tmp_path):
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    fused, report = fuse(handle_of(module), tmp_path, fold_bn="false")
    assert report["layers_folded"] == 0 and report["fused_pairs"] == 0
    assert not report["applied"]
    assert any(isinstance(m, nn.BatchNorm2d) for m in fused.obj.modules())


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_option_value(tmp_path, value):
    from infertune.errors import ConfigError

    with pytest.raises(ConfigError, match="fold_bn must be true or false"):
        fuse(handle_of(nn.Conv2d(3, 4, 3)), tmp_path, fold_bn=value)


def test_input_file_untouched(tmp_path):
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    export_onnx(handle_of(module), tmp_path / "m.onnx")
    data = (tmp_path / "m.onnx").read_bytes()
    fused, _ = fuse(load_model(str(tmp_path / "m.onnx")), tmp_path)
    assert (tmp_path / "m.onnx").read_bytes() == data and fused.path != str(tmp_path / "m.onnx")
    np.testing.assert_equal(len(onnx.load(str(tmp_path / "m.onnx")).graph.node), 2)
