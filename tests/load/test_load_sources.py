"""Model import from every source: each returns the same ModelHandle shape, and each bad
input is a one-line user error naming the file."""
from __future__ import annotations

import hashlib
import textwrap

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from infertune.errors import ConfigError, InfertuneError, ModelFileError, UnsupportedModel
from infertune.load import load_model
from infertune.load.torch_file import EXTRA_FILE


def tiny_onnx(path, hw=(8, 8)):
    """Conv(3->4, 3x3) + GlobalAveragePool + Flatten, batch symbolic."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["y"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_onnx_file(tmp_path):
    path = tiny_onnx(tmp_path / "tiny.onnx")
    before = digest(path)
    handle = load_model(str(path))
    assert handle.format == "onnx" and handle.name == "tiny.onnx"
    assert handle.input_spec.name == "x"
    assert handle.input_spec.shape == ("batch", 3, 8, 8)
    assert digest(path) == before  # inputs are never modified


def test_onnx_symbolic_hw_needs_input_size(tmp_path):
    path = tiny_onnx(tmp_path / "dyn.onnx", hw=("H", "W"))
    with pytest.raises(UnsupportedModel, match="pass --input-size"):
        load_model(str(path))
    assert load_model(str(path), input_size=(32, 40)).input_spec.chw == (3, 32, 40)


def test_corrupt_onnx(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFileError, match=r"bad\.onnx: not a valid ONNX file"):
        load_model(str(path))


def test_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(str(tmp_path))


@pytest.mark.parametrize("source,message", [
    ("missing.onnx", "missing.onnx: no such file"),
    ("darknet19_488", "did you mean 'darknet19_448'"),
    ("nothing/here.pt", "no such file"),
])
def test_unknown_sources(source, message):
    with pytest.raises(InfertuneError, match=message):
        load_model(source)


def test_weights_alone_needs_cfg(tmp_path):
    path = tmp_path / "net.weights"
    path.write_bytes(b"\x00" * 20)
    with pytest.raises(ModelFileError, match="needs its cfg"):
        load_model(str(path))


FACTORY = textwrap.dedent("""
    import torch
    def make():
        m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
        m.input_size = (6, 6)
        m.in_channels = 1
        return m
""")


def test_user_code_needs_trust(tmp_path, monkeypatch):
    (tmp_path / "my_models_a.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--trust-code"):
        load_model("my_models_a:make")
    handle = load_model("my_models_a:make", trust_code=True)
    assert handle.format == "torch" and handle.input_spec.chw == (1, 6, 6)
    assert handle.obj(torch.zeros(2, 1, 6, 6)).shape == (2, 32)


def test_user_code_bad_factory(tmp_path, monkeypatch):
    (tmp_path / "my_models_b.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFileError, match="has no callable 'nope'"):
        load_model("my_models_b:nope", trust_code=True)


def test_torchscript_round_trip(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten()).eval()
    x = torch.randn(2, 3, 12, 12)
    traced = torch.jit.trace(module, x)
    with_info = tmp_path / "with.pt"
    torch.jit.save(traced, str(with_info), _extra_files={EXTRA_FILE: '{"input_shape": [3, 12, 12]}'})
    handle = load_model(str(with_info))
    assert handle.input_spec.chw == (3, 12, 12)
    torch.testing.assert_close(handle.obj(x), module(x))
    bare = tmp_path / "bare.ts"
    torch.jit.save(traced, str(bare))
    with pytest.raises(ConfigError, match="--input-size"):
        load_model(str(bare))
    assert load_model(str(bare), input_size=(12, 12)).input_spec.chw == (3, 12, 12)


def test_pickled_module_is_refused(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(2, 2), path)  # a full pickle: unpickling would run code
    with pytest.raises(ModelFileError, match="not a weights-only checkpoint"):
        load_model(str(path), arch="resnet18")


def test_checkpoint_with_zoo_arch(tmp_path):
    ref = load_model("resnet18", num_classes=10, input_size=(32, 32), seed=3)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": ref.obj.state_dict(), "arch": "resnet18"}, path)
    handle = load_model(str(path), input_size=(32, 32))  # arch and num_classes from the file
    assert handle.meta["num_classes"] == 10
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(handle.obj(x), ref.obj(x), rtol=0, atol=0)


def test_checkpoint_needs_arch_and_must_fit(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(torch.nn.Linear(3, 5).state_dict(), path)
    with pytest.raises(ConfigError, match="--arch"):
        load_model(str(path))
    with pytest.raises(ModelFileError, match="does not fit the architecture"):
        load_model(str(path), arch="resnet18")


def test_zoo_seed_is_deterministic_and_leaves_global_rng():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = load_model("mobilenet_v2", seed=7)
    assert torch.equal(torch.rand(1), expected_next)  # global RNG untouched
    b = load_model("mobilenet_v2", seed=7)
    c = load_model("mobilenet_v2", seed=8)
    wa, wb, wc = (next(h.obj.parameters()) for h in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_a_zoo_name_that_is_also_a_folder_here_loads_the_zoo_entry(tmp_path, monkeypatch):
    """`optimize ref-small --out ref-small` run twice: the second run finds a folder named
    like the model in the working directory; the name still means the zoo entry. A folder
    given as a path (with a slash) is still refused as not a model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ref-small").mkdir()
    (tmp_path / "ref-small" / "config.yaml").write_text("model: ref-small\n")
    handle = load_model("ref-small")
    assert handle.name == "ref-small" and handle.format == "torch"
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model("./ref-small")
