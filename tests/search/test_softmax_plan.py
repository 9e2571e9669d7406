"""The quantized-Softmax candidate: planned exactly where the model has a Softmax layer."""
from __future__ import annotations

import torch

from infertune.load import load_model
from infertune.passes.pipeline import to_onnx
from infertune.passes.base import PassContext
from infertune.search import space
from infertune.search.run import has_softmax
from infertune.types import InputSpec, ModelHandle

CFG = """[net]
width=16
height=16
channels=3

[convolutional]
filters=4
size=3
stride=1
pad=1
activation=leaky

[avgpool]
"""


def _torch(softmax: bool) -> ModelHandle:
    layers = [torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()]
    net = torch.nn.Sequential(*layers, *([torch.nn.Softmax(dim=1)] if softmax else [])).eval()
    return ModelHandle(format="torch", obj=net, input_spec=InputSpec(shape=("batch", 3, 16, 16)),
                       name="t", source="test")


def test_has_softmax_in_torch_darknet_and_onnx_models(tmp_path):
    assert has_softmax(_torch(True)) and not has_softmax(_torch(False))
    log = _torch(False)
    log.obj.append(torch.nn.LogSoftmax(dim=1))  # exported as LogSoftmax, which ORT leaves alone
    assert not has_softmax(log)
    for tail, expected in (("\n[softmax]\ngroups=1\n", True), ("", False)):
        cfg = tmp_path / f"net{int(expected)}.cfg"
        cfg.write_text(CFG + tail)
        assert has_softmax(load_model(str(cfg))) is expected
    ctx = PassContext(workdir=tmp_path / "export")
    assert has_softmax(to_onnx(_torch(True), ctx))
    assert not has_softmax(to_onnx(_torch(False), ctx))


def _softmax_steps(ctx: space.PlanContext) -> list[str]:
    return [c.label for c in space.quantized(ctx)
            if any(s.options.get("softmax") == "int8" for s in c.plan.recipe)]


def test_the_quantized_softmax_candidate_is_planned_only_with_a_softmax():
    base = dict(model_key={"source": "m"}, model_format="torch",
                runtimes=("torch", "onnxruntime", "openvino"))
    planned = _softmax_steps(space.PlanContext(**base, softmax=True))
    assert len(planned) == 1 and planned[0].endswith("→ onnxruntime")
    assert "softmax=int8" in planned[0]
    assert _softmax_steps(space.PlanContext(**base, softmax=False)) == []
