"""channels_last: weights in NHWC memory order, the input converted inside the model (so the
torch runtimes' artifacts carry the conversion), values unchanged, the input model untouched.

Tolerance: the same values in another memory order; oneDNN may pick another kernel and sum
in another order (~1e-7 relative). RTOL 1e-5, ATOL 1e-5·max|y|.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from infertune.errors import ConfigError
from infertune.load import load_model
from infertune.runtimes.session import SessionFactory
from infertune.passes import PassContext, apply_passes
from infertune.runtimes import RUNTIMES
from infertune.types import InputSpec, ModelHandle

RTOL, ATOL_REL = 1e-5, 1e-5
CL = torch.channels_last


def tiny() -> ModelHandle:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                           nn.Conv2d(8, 4, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(4, 3)).eval()
    return ModelHandle("torch", InputSpec(shape=("batch", 3, 16, 16)), "tiny", "test", obj=module)


def convert(handle: ModelHandle, tmp_path, steps=(("channels_last", {}),)):
    return apply_passes(handle, list(steps), PassContext(workdir=tmp_path / "w"))


X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_weights_and_input_in_channels_last(tmp_path):
    handle = tiny()
    model, reports = convert(handle, tmp_path)
    report = reports[-1]
    assert report["applied"] and report["weights_converted"] == 2 and model.meta["channels_last"]
    assert model.obj[0].weight.is_contiguous(memory_format=CL)
    assert handle.obj[0].weight.is_contiguous() and not handle.meta.get("channels_last")
    seen = []
    model.obj[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].is_contiguous(memory_format=CL)))
    with torch.no_grad():
        got, ref = model.obj(X), handle.obj(X)
    assert seen == [True]  # the contiguous NCHW input reached the first conv as NHWC
    torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL_REL * float(ref.abs().max()))


@pytest.mark.parametrize("runtime", ["torch", "torchscript"])
def test_torch_runtime_artifacts_carry_the_conversion(tmp_path, runtime):
    handle = tiny()
    model, _ = convert(handle, tmp_path, [("fold_bn", {}), ("channels_last", {})])
    rt = RUNTIMES.get(runtime)
    artifact = rt.build(model, tmp_path / "build")
    session = SessionFactory(runtime, str(artifact), options=rt.options(2)).open(threads=None)
    got = session.run(X.numpy())[0]
    session.close()
    with torch.no_grad():
        ref = handle.obj(X).numpy()
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL_REL * np.abs(ref).max())
    if runtime == "torchscript":
        scripted = torch.jit.load(str(artifact))
        assert any(n.kind() == "aten::contiguous" for n in scripted.graph.nodes())


def test_does_not_apply_without_convolutions_or_twice(tmp_path):
    linear = ModelHandle("torch", InputSpec(shape=("batch", 3, 4, 4)), "mlp", "test",
                         obj=nn.Sequential(nn.Flatten(), nn.Linear(48, 2)).eval())
    model, reports = convert(linear, tmp_path)
    assert not reports[-1]["applied"] and "no 4-D weights" in reports[-1]["reason"]
    assert model is linear
    once, _ = convert(tiny(), tmp_path)
    again, reports = convert(once, tmp_path)
    assert not reports[-1]["applied"] and again is once


def test_onnx_model_is_refused_with_reason(tmp_path):
    from infertune.export import export_onnx

    export_onnx(tiny(), tmp_path / "t.onnx")
    with pytest.raises(ConfigError, match="pass channels_last takes torch models, not onnx"):
        convert(load_model(str(tmp_path / "t.onnx")), tmp_path)


def test_weights_only_option(tmp_path):
    model, reports = convert(tiny(), tmp_path, [("channels_last", {"convert_input": "false"})])
    assert reports[-1]["input_converted"] is False and not model.obj._forward_pre_hooks
    assert model.obj[0].weight.is_contiguous(memory_format=CL)
