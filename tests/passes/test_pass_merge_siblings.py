"""merge_siblings on an Inception-style block: structure (merged Conv count, Split, the
activation moved before it, Split+Concat cancelled) and numerics (allclose, exact rewrite).

Tolerance: merging concatenates the weights unchanged; only the GEMM's blocking (and so the
summation order) can differ for the wider conv: ~1e-7 relative. RTOL 1e-5, ATOL 1e-5·max|y|.
"""
from __future__ import annotations

import hashlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from infertune.errors import ConfigError
from infertune.export import export_onnx
from infertune.load import load_model
from infertune.passes import PassContext, apply_passes
from infertune.types import InputSpec, ModelHandle

RTOL, ATOL_REL = 1e-5, 1e-5


class Inception(nn.Module):
    """stem, then four branches on one tensor: three 1×1 convs + ReLU (siblings: one feeds a
    3×3 conv) and a 3×3 conv (different kernel: not a sibling); concatenated."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.b1, self.b2, self.b3 = nn.Conv2d(8, 4, 1), nn.Conv2d(8, 6, 1), nn.Conv2d(8, 5, 1)
        self.b2_3x3 = nn.Conv2d(6, 4, 3, padding=1)
        self.b4 = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        a, b, c = torch.relu(self.b1(x)), torch.relu(self.b2(x)), torch.relu(self.b3(x))
        return torch.cat([a, self.b2_3x3(b), c, self.b4(x)], 1)


class Parallel(nn.Module):
    """Three sibling 1×1 convs + ReLU on the input, concatenated in order."""

    def __init__(self):
        super().__init__()
        self.b1, self.b2, self.b3 = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 6, 1), nn.Conv2d(3, 5, 1)

    def forward(self, x):
        return torch.cat([torch.relu(self.b1(x)), torch.relu(self.b2(x)), torch.relu(self.b3(x))], 1)


def onnx_of(module: nn.Module, tmp_path, name: str) -> ModelHandle:
    torch.manual_seed(0)
    handle = ModelHandle("torch", InputSpec(shape=("batch", 3, 16, 16)), name, "test",
                         obj=module.eval())
    export_onnx(handle, tmp_path / f"{name}.onnx")
    return load_model(str(tmp_path / f"{name}.onnx"))


def merge(handle: ModelHandle, tmp_path, **options):
    model, reports = apply_passes(handle, [("merge_siblings", options)],
                                  PassContext(workdir=tmp_path / "work"))
    return model, reports[-1]


def ops(path: str) -> list[str]:
    return [n.op_type for n in onnx.load(path).graph.node]


def assert_same_outputs(a: str, b: str) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    ref, got = (ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
                for p in (a, b))
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL_REL * np.abs(ref).max())


def test_inception_block_merged(tmp_path):
    torch.manual_seed(0)
    handle = onnx_of(Inception(), tmp_path, "inception")
    merged, report = merge(handle, tmp_path)
    assert report["applied"] and report["groups_merged"] == 1
    assert (report["convs_before"], report["convs_after"]) == (6, 4)  # 3 siblings → 1
    group = report["groups"][0]
    assert group["channels"] == [4, 6, 5] and group["activation"] == "Relu"
    assert not group["split_concat_removed"]  # b2 feeds a 3×3 conv, not the Concat directly
    after = ops(merged.path)
    assert after.count("Split") == 1 and after.count("Relu") == 2  # stem's + one for 15 channels
    assert_same_outputs(handle.path, merged.path)


def test_split_and_concat_cancel(tmp_path):
    torch.manual_seed(0)
    handle = onnx_of(Parallel(), tmp_path, "parallel")
    merged, report = merge(handle, tmp_path)
    assert report["groups"][0]["split_concat_removed"]
    assert ops(merged.path) == ["Conv", "Relu"]
    assert_same_outputs(handle.path, merged.path)


def test_without_activation(tmp_path):
    torch.manual_seed(0)
    handle = onnx_of(Parallel(), tmp_path, "parallel")
    merged, report = merge(handle, tmp_path, with_activation="false")
    assert report["groups"][0]["activation"] is None
    assert ops(merged.path).count("Relu") == 3 and ops(merged.path).count("Split") == 1
    assert_same_outputs(handle.path, merged.path)


def test_torch_model_is_exported_first(tmp_path):
    torch.manual_seed(0)
    module = Inception().eval()
    handle = ModelHandle("torch", InputSpec(shape=("batch", 3, 16, 16)), "inc", "test", obj=module)
    model, reports = apply_passes(handle, [("merge_siblings", {})], PassContext(workdir=tmp_path))
    assert [r["pass"] for r in reports] == ["export_onnx", "merge_siblings"]
    x = torch.randn(2, 3, 16, 16)
    session = ort.InferenceSession(model.path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        ref = module(x).numpy()
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL_REL * np.abs(ref).max())


def test_not_enough_siblings_does_not_apply(tmp_path):
    torch.manual_seed(0)
    handle = onnx_of(Parallel(), tmp_path, "parallel")
    digest = hashlib.sha256(open(handle.path, "rb").read()).hexdigest()
    model, report = merge(handle, tmp_path, min_group="4")
    assert not report["applied"] and model is handle
    assert "no sibling convolutions" in report["reason"]
    assert hashlib.sha256(open(handle.path, "rb").read()).hexdigest() == digest


@pytest.mark.parametrize("options,message", [
    ({"min_group": "1"}, "min_group must be at least 2"),
    ({"min_group": "two"}, "min_group must be int"),
    ({"with_activations": "true"}, "did you mean 'with_activation'"),
])
def test_bad_config(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        merge(onnx_of(Parallel(), tmp_path, "parallel"), tmp_path, **options)
