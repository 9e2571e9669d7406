"""The ONNX Runtime opener on a tiny model built here: outputs equal numpy's computation,
and the harness measures it end to end in a child (correctness only, no timing claims)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from infertune.errors import ModelFileError
from infertune.measure import SessionFactory, TimingConfig, measure

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3, 1, 1)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)


@pytest.fixture
def tiny_onnx(tmp_path):
    """1x1 Conv (3 -> 4 channels) + Relu + GlobalAveragePool, dynamic batch."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 1, 1])],
        initializer=[numpy_helper.from_array(W, "w"), numpy_helper.from_array(B, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    return path


def _numpy_reference(x: np.ndarray) -> np.ndarray:
    conv = np.einsum("nchw,oc->nohw", x, W[:, :, 0, 0]) + B[None, :, None, None]
    return np.maximum(conv, 0).mean(axis=(2, 3), keepdims=True)


def test_ort_opener_matches_numpy(tiny_onnx):
    session = SessionFactory("onnxruntime", str(tiny_onnx)).open(threads=1)
    try:
        x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
        (y,) = session.run(x)
        np.testing.assert_allclose(y, _numpy_reference(x), rtol=1e-5, atol=1e-6)
        info = session.describe()
        assert info["providers"] == ["CPUExecutionProvider"]
        assert info["intra_op_num_threads"] == 1 and info["optimization"] == "all"
    finally:
        session.close()


def test_ort_opener_session_options():
    import onnxruntime as ort

    from infertune.runtimes.onnxruntime import session_options

    so = session_options({"threads": 2})
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


def test_ort_opener_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such ONNX file"):
        SessionFactory("onnxruntime", str(tmp_path / "absent.onnx")).open(threads=1)


def test_harness_measures_ort_in_a_child(tiny_onnx):
    res = measure(SessionFactory("onnxruntime", str(tiny_onnx)), input_shape=(3, 5, 5),
                  timing=TimingConfig(warmup=2, min_runs=20, min_seconds=0.0), threads=1,
                  throughput=[1, 2], timeout_s=60, overhead=False,
                  throughput_timing=TimingConfig(warmup=1, min_runs=5, min_seconds=0.0))
    assert res["status"] == "ok", res.get("reason")
    assert res["latency_ms"]["n"] >= 20 and res["latency_ms"]["p50"] > 0
    assert res["artifact_mb"] == pytest.approx(tiny_onnx.stat().st_size / 2**20)
    assert res["session_info"]["providers"] == ["CPUExecutionProvider"]
    assert res["threads"] == 1 and set(res["throughput_ips"]) == {"1", "2"}
    assert res["import_ms"] > 0 and res["cold_start_ms"] > 0
    assert res["energy_j_per_image"] is not None or res["energy_reason"]
    assert res["fingerprint"]["libraries"]["onnxruntime"]


def test_missing_artifact_in_a_child_is_failed(tmp_path):
    res = measure(SessionFactory("onnxruntime", str(tmp_path / "gone.onnx")),
                  input_shape=(3, 5, 5), timeout_s=60, with_fingerprint=False)
    assert res["status"] == "failed" and "no such ONNX file" in res["reason"]
