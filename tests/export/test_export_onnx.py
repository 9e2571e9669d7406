"""ONNX export: parity with torch through ONNX Runtime, dynamic batch, opset, atomic output."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh
from torch import nn

from infertune.errors import ConfigError, UnsupportedModel
from infertune.export import export_onnx
from infertune.types import InputSpec, ModelHandle

# Tiny float32 nets: ORT and torch differ only by summation order, ~1e-7 per op here; 1e-4
# is far above that and far below any real mistake (a wrong op moves outputs by ~1e-1).
ATOL = 1e-4


def torch_handle(model, c=3, h=8, w=8) -> ModelHandle:
    return ModelHandle(format="torch", obj=model.eval(), name="tiny", source="tiny",
                       input_spec=InputSpec(shape=("batch", c, h, w)))


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).eval()


def run_ort(path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def opset(path) -> int:
    return max(o.version for o in onnx.load(path).opset_import if o.domain in ("", "ai.onnx"))


def test_onnx_runtime_matches_torch_at_batch_1_and_4(tmp_path):
    model = tiny_cnn()
    out = tmp_path / "tiny.onnx"
    info = export_onnx(torch_handle(model), out)
    assert info["path"] == str(out) and info["bytes"] == out.stat().st_size
    assert info["opset"] == opset(out) >= 17
    assert info["inputs"] == [{"name": "input", "shape": ["batch", 3, 8, 8]}]
    assert info["outputs"] == [{"name": "output", "shape": ["batch", 5]}]
    assert info["checked_batches"] == [1, 2] and info["max_abs_diff"] <= ATOL
    for batch in (1, 4):  # 4 was never seen by the exporter: the batch axis is dynamic
        x = np.random.default_rng(batch).standard_normal((batch, 3, 8, 8)).astype(np.float32)
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        (got,) = run_ort(out, x)
        assert got.shape == (batch, 5)
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]  # no temp files left


def test_opset_can_be_raised_and_not_lowered_below_17(tmp_path):
    info = export_onnx(torch_handle(tiny_cnn()), tmp_path / "a.onnx", opset=18, check=False)
    assert info["opset"] == opset(tmp_path / "a.onnx") == 18
    assert info["max_abs_diff"] is None  # check=False: nothing compared
    with pytest.raises(ConfigError, match="17"):
        export_onnx(torch_handle(tiny_cnn()), tmp_path / "b.onnx", opset=13)
    assert not (tmp_path / "b.onnx").exists()


class Unexportable(nn.Module):
    """aten::histc has no ONNX symbolic at opset 17."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.histc(self.conv(x), bins=4)


def test_failed_export_leaves_no_file_and_no_temporaries(tmp_path, capfd):
    out = tmp_path / "bad.onnx"
    with pytest.raises(UnsupportedModel, match="histc") as err:
        export_onnx(torch_handle(Unexportable()), out)
    assert "\n" not in str(err.value)  # one line for the CLI
    assert list(tmp_path.iterdir()) == []
    captured = capfd.readouterr()  # the exporter's C++ graph dump is silenced
    assert "Torch IR graph" not in captured.out + captured.err


def test_failed_check_keeps_an_existing_file_untouched(tmp_path, monkeypatch):
    out = tmp_path / "tiny.onnx"
    out.write_bytes(b"previous export")
    # A negative tolerance makes any comparison fail, as a wrong op would.
    monkeypatch.setattr("infertune.export.onnx.REL_TOLERANCE", -1.0)
    with pytest.raises(UnsupportedModel, match="differs"):
        export_onnx(torch_handle(tiny_cnn()), out)
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        features = self.body(x)
        return self.fc(features), features


def test_tuple_outputs_are_named_and_checked(tmp_path):
    torch.manual_seed(0)
    model = TwoHeads().eval()
    out = tmp_path / "two.onnx"
    info = export_onnx(torch_handle(model), out)
    assert [o["name"] for o in info["outputs"]] == ["output", "output_1"]
    assert [o["shape"] for o in info["outputs"]] == [["batch", 3], ["batch", 4]]
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    logits, features = run_ort(out, x)
    with torch.inference_mode():
        ref_logits, ref_features = model(torch.from_numpy(x))
    np.testing.assert_allclose(logits, ref_logits.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(features, ref_features.numpy(), atol=ATOL, rtol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script is deprecated
def test_torchscript_module_exports(tmp_path):
    model = tiny_cnn()
    info = export_onnx(torch_handle(torch.jit.script(model)), tmp_path / "s.onnx")
    assert info["max_abs_diff"] <= ATOL and info["checked_batches"] == [1, 2]


def opset13_model() -> onnx.ModelProto:
    weight = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [oh.make_node("Conv", ["img", "w"], ["c"], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c"], ["r"]), oh.make_node("GlobalAveragePool", ["r"], ["g"]),
             oh.make_node("Flatten", ["g"], ["f"]),
             oh.make_node("Softmax", ["f"], ["prob"], axis=1)]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("img", TP.FLOAT, ["N", 3, 6, 6])],
                          [oh.make_tensor_value_info("prob", TP.FLOAT, ["N", 4])],
                          [nh.from_array(weight, "w")])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])
    model.ir_version = 7
    return model


def test_onnx_handle_is_upgraded_and_source_untouched(tmp_path):
    src = tmp_path / "src.onnx"
    onnx.save(opset13_model(), src)
    before = src.read_bytes()
    handle = ModelHandle(format="onnx", path=str(src), name="src.onnx", source=str(src),
                         input_spec=InputSpec(name="img", shape=("batch", 3, 6, 6)))
    out = tmp_path / "out" / "re.onnx"
    info = export_onnx(handle, out)
    assert src.read_bytes() == before
    assert info["opset"] == opset(out) == 17
    assert info["inputs"] == [{"name": "img", "shape": ["N", 3, 6, 6]}]
    assert info["checked_batches"] == [1, 2] and info["max_abs_diff"] <= ATOL
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(run_ort(out, x)[0], run_ort(src, x)[0], atol=ATOL, rtol=0)
