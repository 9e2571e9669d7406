"""runtimes/layer_time.py (and each runtime's `time_layers`) on a tiny Darknet model: rows name the runtime's own nodes or modules, every
time is >= 0, the shares add up to 1, and bad requests are user errors. No timing asserted."""
from __future__ import annotations

import pytest
import torch

from infertune.errors import InfertuneError
from infertune.load import load_model
from infertune.runtimes import RUNTIMES
from infertune.runtimes.layer_time import layer_times, rows_from_totals
from infertune.runtimes.onnxruntime import ort_kernel_events
from tiny_models import TINY_CFG

SHAPE = (3, 16, 16)
# Shares are each rounded to 6 decimals: over ~10-30 rows the rounding adds up to < 1e-4.
SHARE_TOL = 1e-4


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layer_time")
    cfg = folder / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    handle = load_model(str(cfg), seed=1)
    return handle, folder


def _artifact(built, runtime):
    handle, folder = built
    # onnxruntime, openvino and torch are hard dependencies: unavailable is a broken install.
    assert RUNTIMES.get(runtime).available() == (True, None)
    return RUNTIMES.get(runtime).build(handle, folder, threads=1)


def _check_rows(result):
    rows = result["layers"]
    assert rows and all(row["ms"] >= 0 for row in rows)
    assert abs(sum(row["share"] for row in rows) - 1.0) < SHARE_TOL
    assert result["total_ms"] == pytest.approx(sum(row["ms"] for row in rows))
    assert result["method"]
    return rows


def test_onnxruntime_rows_are_the_nodes_ort_runs(built, tmp_path):
    import onnx
    import onnxruntime as ort

    from infertune.runtimes.onnxruntime import session_options

    artifact = _artifact(built, "onnxruntime")
    rows = _check_rows(layer_times("onnxruntime", artifact, SHAPE, threads=1, runs=3))
    # The graph ORT runs, saved with the same session options: the names must be its nodes.
    options = session_options({"threads": 1})
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
    nodes = {n.name: n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node}
    assert {row["name"] for row in rows} == set(nodes)
    assert any(row["op"] == "Conv" for row in rows)


def test_openvino_rows_are_executed_nodes_with_their_kernel(built):
    artifact = _artifact(built, "openvino")
    rows = _check_rows(layer_times("openvino", artifact, SHAPE, threads=1, runs=3))
    assert any(row["op"] == "Convolution" for row in rows)
    # FP32 was requested: every kernel that ran says f32 (none silently in bf16).
    assert all(row["exec_type"].endswith("f32") for row in rows), rows


def test_torch_rows_are_the_leaf_modules(built):
    handle, _ = built
    artifact = _artifact(built, "torch")
    rows = _check_rows(layer_times("torch", artifact, SHAPE, threads=1, runs=3))
    modules = dict(handle.obj.named_modules())
    names = [row["name"] for row in rows]
    assert names[-1] == "(other)"
    assert set(names[:-1]) <= set(modules)
    assert "layers.0.conv" in names and "layers.2.conv" in names
    convs = [row for row in rows if row["op"] == "Conv2d"]
    assert [row["name"] for row in convs] == ["layers.0.conv", "layers.2.conv"]


def test_torchscript_rows_are_operators(built):
    artifact = _artifact(built, "torchscript")
    result = layer_times("torchscript", artifact, SHAPE, threads=1, runs=3)
    rows = _check_rows(result)
    assert "operator" in result["method"]
    assert any("conv" in row["name"] for row in rows)


def test_rows_from_totals_hand_worked():
    rows = rows_from_totals({"a": 3.0, "b": 1.0}, {"a": "Conv"}, runs=2,
                            extra={"b": {"exec_type": "x"}})
    assert rows == [{"name": "a", "op": "Conv", "ms": 1.5, "share": 0.75},
                    {"name": "b", "op": "", "ms": 0.5, "share": 0.25, "exec_type": "x"}]


def test_ort_warmup_runs_are_left_out():
    trace = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 10},
             {"cat": "Node", "name": "n_kernel_time", "ts": 1, "dur": 5},
             {"cat": "Session", "name": "model_run", "ts": 20, "dur": 10},
             {"cat": "Node", "name": "n_kernel_time", "ts": 21, "dur": 7},
             {"cat": "Node", "name": "n_fence_before", "ts": 21, "dur": 0}]
    assert [e["dur"] for e in ort_kernel_events(trace, warmup=1)] == [7]
    assert ort_kernel_events(trace, warmup=2) == []


def test_bad_requests_are_user_errors(tmp_path):
    with pytest.raises(InfertuneError, match="tensorrt"):
        layer_times("tensorrt", tmp_path / "x.engine", SHAPE)
    with pytest.raises(InfertuneError, match="no such artifact"):
        layer_times("onnxruntime", tmp_path / "missing.onnx", SHAPE)
    with pytest.raises(InfertuneError, match="runs"):
        layer_times("onnxruntime", tmp_path / "missing.onnx", SHAPE, runs=0)


def test_profile_layer_time_through_the_api(built, tmp_path):
    from infertune import api
    from infertune.commands.options import ProfileOptions
    from infertune.cli import main

    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    result = api.profile(str(cfg), ProfileOptions(layer_time="onnxruntime", threads=1))
    _check_rows(result["layer_time"])
    assert result["layer_time"]["artifact"] == "model.onnx"
    with pytest.raises(InfertuneError, match="no per-layer timing"):
        api.profile(str(cfg), ProfileOptions(layer_time="tensorrt"))
    assert main(["profile", str(cfg), "--layer-time", "openvino", "--threads", "1"]) == 0
