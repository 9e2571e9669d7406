"""cleanup: dead nodes and unwanted outputs removed, constants folded (ORT BASIC), standard
ops only; numerics unchanged (exact: folding 2+3 or dropping an Identity changes no value;
ORT may fold a Mul into a Conv, ~1e-7 relative). RTOL 1e-5, ATOL 1e-5·max|y|.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from infertune.errors import ConfigError
from infertune.load import load_model
from infertune.passes import PassContext, apply_passes

RTOL, ATOL_REL = 1e-5, 1e-5


def messy_onnx(path) -> None:
    """x → Identity → Mul(2+3) → Conv → Relu → y, Conv → Tanh → aux, and x → Sigmoid (dead)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([2.0], np.float32), "two"),
             numpy_helper.from_array(np.array([3.0], np.float32), "three"),
             numpy_helper.from_array(np.ones(4, np.float32), "unused")]
    nodes = [helper.make_node("Identity", ["x"], ["xi"]),
             helper.make_node("Add", ["two", "three"], ["five"]),
             helper.make_node("Mul", ["xi", "five"], ["xs"]),
             helper.make_node("Conv", ["xs", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"]),
             helper.make_node("Tanh", ["c"], ["aux"]),
             helper.make_node("Sigmoid", ["x"], ["dead"])]
    shape = ["n", 4, 8, 8]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape),
                               helper.make_tensor_value_info("aux", TensorProto.FLOAT, shape)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def clean(tmp_path, **options):
    messy_onnx(tmp_path / "messy.onnx")
    handle = load_model(str(tmp_path / "messy.onnx"))
    model, reports = apply_passes(handle, [("cleanup", options)], PassContext(workdir=tmp_path / "w"))
    return handle, model, reports[-1]


def run(path: str) -> dict[str, np.ndarray]:
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"x": x})))


def test_dead_nodes_removed_and_constants_folded(tmp_path):
    handle, model, report = clean(tmp_path)
    proto = onnx.load(model.path)
    ops = [n.op_type for n in proto.graph.node]
    assert report["applied"] and report["dead_nodes_removed"] == 1
    assert report["nodes_before"] == 7 and report["nodes_after"] == len(ops) < 7
    assert not {"Sigmoid", "Identity", "Add"} & set(ops) and {"Conv", "Relu", "Tanh"} <= set(ops)
    assert "unused" not in {i.name for i in proto.graph.initializer}
    # standard ONNX only: any runtime can take it
    assert {n.domain for n in proto.graph.node} <= {""} and [o.domain for o in proto.opset_import] == [""]
    ref, got = run(handle.path), run(model.path)
    for name in ("y", "aux"):
        np.testing.assert_allclose(got[name], ref[name], rtol=RTOL, atol=ATOL_REL * np.abs(ref[name]).max())


def test_outputs_option_drops_an_output_and_what_only_it_needs(tmp_path):
    handle, model, report = clean(tmp_path, outputs="y")
    proto = onnx.load(model.path)
    assert report["outputs_dropped"] == ["aux"] and [o.name for o in proto.graph.output] == ["y"]
    assert "Tanh" not in [n.op_type for n in proto.graph.node]
    assert model.meta["outputs"] == ["y"]
    ref, got = run(handle.path), run(model.path)
    np.testing.assert_allclose(got["y"], ref["y"], rtol=RTOL, atol=ATOL_REL * np.abs(ref["y"]).max())


def test_without_constant_folding(tmp_path):
    _, model, report = clean(tmp_path, fold_constants="false")
    ops = [n.op_type for n in onnx.load(model.path).graph.node]
    assert "Sigmoid" not in ops and "Identity" in ops and "Add" in ops


def test_unknown_output_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="'?logits'? is not an output of the model"):
        clean(tmp_path, outputs="logits")


def test_clean_graph_does_not_apply(tmp_path):
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 6, 6])],
        [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "c.onnx"))
    handle = load_model(str(tmp_path / "c.onnx"))
    model, reports = apply_passes(handle, [("cleanup", {})], PassContext(workdir=tmp_path / "w"))
    assert not reports[-1]["applied"] and model is handle
    assert "nothing to clean up" in reports[-1]["reason"]


def test_input_file_untouched_and_openvino_reads_result(tmp_path):
    handle, model, _ = clean(tmp_path)
    assert [n.op_type for n in onnx.load(handle.path).graph.node].count("Sigmoid") == 1
    import openvino as ov

    assert ov.Core().read_model(model.path) is not None
