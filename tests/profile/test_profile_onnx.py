"""Static profile of ONNX graphs: hand-built graphs with hand-worked numbers, and the torch
export of a tiny CNN compared with the torch profile of the same module."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh
from torch import nn

from infertune.export import export_onnx
from infertune.profile import profile_model
from infertune.types import InputSpec, ModelHandle


def onnx_handle(path, c=3, h=6, w=6, name="x") -> ModelHandle:
    return ModelHandle(format="onnx", path=str(path), name="net.onnx", source=str(path),
                       input_spec=InputSpec(name=name, shape=("batch", c, h, w)))


def torch_handle(model, c, h, w) -> ModelHandle:
    return ModelHandle(format="torch", obj=model.eval(), name="tiny", source="tiny",
                       input_spec=InputSpec(shape=("batch", c, h, w)))


def _init(name, shape, rng):
    return nh.from_array(rng.standard_normal(shape).astype(np.float32), name)


def symbolic_model(initializers_as_inputs: bool = False) -> onnx.ModelProto:
    """x[N,3,H,W] -> Conv 3x3 -> Conv 1x1 group 2 -> BN -> Mul 0.5 -> Flatten -> Gemm(10)."""
    rng = np.random.default_rng(0)
    inits = [_init("w1", (4, 3, 3, 3), rng), _init("b1", (4,), rng), _init("w2", (4, 2, 1, 1), rng),
             _init("scale", (4,), rng), _init("shift", (4,), rng), _init("mean", (4,), rng),
             nh.from_array(np.ones(4, np.float32), "var"),
             _init("wg", (10, 64), rng), _init("bg", (10,), rng)]
    nodes = [
        oh.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3]),
        oh.make_node("Conv", ["c1", "w2"], ["c2"], name="conv2", group=2),
        oh.make_node("BatchNormalization", ["c2", "scale", "shift", "mean", "var"], ["bn"],
                     name="bn"),
        oh.make_node("Constant", [], ["half"], value=nh.from_array(np.array(0.5, np.float32))),
        oh.make_node("Mul", ["bn", "half"], ["m"], name="mul"),
        oh.make_node("Flatten", ["m"], ["f"], name="flatten"),
        oh.make_node("Gemm", ["f", "wg", "bg"], ["y"], name="fc", transB=1),
    ]
    inputs = [oh.make_tensor_value_info("x", TP.FLOAT, ["N", 3, "H", "W"])]
    if initializers_as_inputs:  # what older exporters wrote
        inputs += [oh.make_tensor_value_info(i.name, TP.FLOAT, list(i.dims)) for i in inits]
    graph = oh.make_graph(nodes, "g", inputs, [oh.make_tensor_value_info("y", TP.FLOAT, ["N", 10])],
                          inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("initializers_as_inputs", [False, True])
def test_symbolic_batch_graph_matches_hand_counts(tmp_path, initializers_as_inputs):
    path = tmp_path / "net.onnx"
    onnx.save(symbolic_model(initializers_as_inputs), path)
    prof = profile_model(onnx_handle(path, 3, 6, 6))
    rows = {r["name"]: r for r in prof["layers"]}
    assert list(rows) == ["conv1", "conv2", "bn", "mul", "flatten", "fc"]  # Constant: no row
    # conv1: 3x6x6, 3x3 valid -> 4x4x4 = 64 outputs x 27 taps; 108 weights + 4 biases.
    assert (rows["conv1"]["macs"], rows["conv1"]["params"]) == (64 * 27, 112)
    assert rows["conv1"]["output_shape"] == [4, 4, 4]
    assert rows["conv1"]["mac_bytes"] == 3 * 36 * 4 + 112 * 4 + 64 * 4  # 432 + 448 + 256
    # conv2: group 2, so each of the 64 outputs reads 4/2 = 2 channels x 1 tap.
    assert (rows["conv2"]["macs"], rows["conv2"]["params"]) == (64 * 2, 8)
    # BN: scale+shift are params (8), mean+var buffers (8).
    assert (rows["bn"]["params"], rows["bn"]["buffers"], rows["bn"]["weight_bytes"]) == (8, 8, 64)
    # The scalar 0.5 is no parameter, but it is read: 256 in + 4 + 256 out.
    assert (rows["mul"]["params"], rows["mul"]["mac_bytes"]) == (0, 516)
    assert rows["flatten"]["output_shape"] == [64]
    # Gemm 64 -> 10 with transB: 10 outputs x 64; 640 + 10 params.
    assert (rows["fc"]["macs"], rows["fc"]["params"]) == (640, 650)
    assert rows["fc"]["mac_bytes"] == 64 * 4 + 650 * 4 + 10 * 4
    assert prof["params"] == 112 + 8 + 8 + 650
    assert prof["buffers"] == 8
    assert prof["macs"] == 1728 + 128 + 640
    assert prof["output_shape"] == [10] and prof["input_shape"] == [3, 6, 6]
    assert prof["weight_bytes"] == (778 + 8) * 4


def test_profiling_leaves_the_input_file_byte_identical(tmp_path):
    path = tmp_path / "net.onnx"
    onnx.save(symbolic_model(), path)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    profile_model(onnx_handle(path, 3, 6, 6))
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]


def test_shapes_open_after_inference_are_resolved_by_running_the_graph(tmp_path):
    """A Reshape whose target shape goes through float Casts defeats data propagation."""
    rng = np.random.default_rng(1)
    nodes = [
        oh.make_node("Shape", ["x"], ["s"]), oh.make_node("Cast", ["s"], ["sf"], to=TP.FLOAT),
        oh.make_node("Cast", ["sf"], ["si"], to=TP.INT64),
        oh.make_node("Slice", ["si", "zero", "one"], ["n"]),
        oh.make_node("Concat", ["n", "minus1"], ["shape"], axis=0),
        oh.make_node("Reshape", ["x", "shape"], ["flat"]),
        oh.make_node("MatMul", ["flat", "w"], ["y"], name="fc"),
    ]
    inits = [nh.from_array(np.array([0]), "zero"), nh.from_array(np.array([1]), "one"),
             nh.from_array(np.array([-1]), "minus1"), _init("w", (48, 5), rng)]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, ["N", 3, 4, 4])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, ["N", 5])], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    prof = profile_model(onnx_handle(tmp_path / "m.onnx", 3, 4, 4))
    fc = {r["name"]: r for r in prof["layers"]}["fc"]
    assert fc["macs"] == 5 * 48 and fc["output_shape"] == [5]  # 5 outputs x 48 reduced
    assert prof["params"] == 48 * 5                           # int64 shape data are no params


def tiny_cnn(bn: bool) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1, bias=not bn)]
    layers += [nn.BatchNorm2d(8)] if bn else []
    layers += [nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.ReLU(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)]
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("bn", [False, True])
def test_exported_onnx_profile_equals_torch_profile(tmp_path, bn):
    model = tiny_cnn(bn)
    ref = profile_model(torch_handle(model, 3, 8, 8))
    out = tmp_path / "tiny.onnx"
    export_onnx(torch_handle(model, 3, 8, 8), out)
    prof = profile_model(onnx_handle(out, 3, 8, 8, name="input"))
    assert prof["macs"] == ref["macs"]
    assert prof["output_shape"] == ref["output_shape"] == [5]
    ops = {n.op_type for n in onnx.load(out).graph.node}
    if "BatchNormalization" in ops or not bn:
        assert (prof["params"], prof["buffers"]) == (ref["params"], ref["buffers"])
    else:
        # The legacy exporter in EVAL mode folds BN into the conv before it: the conv gains
        # a bias (8), BN's weight+bias (16 params) and running stats (16 buffers) disappear.
        assert ref["buffers"] == 16
        assert (prof["params"], prof["buffers"]) == (ref["params"] - 16 + 8, 0)
