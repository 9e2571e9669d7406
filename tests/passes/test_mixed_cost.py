"""mixed_precision rank=cost: the pure ranking on hand-worked numbers, the profile-row
matching on hand-built graphs, the pass end to end on ONNX Runtime and OpenVINO, and the
config checks.

No timing is asserted (the machine is shared and noisy): the end-to-end tests check that
every layer was *matched* in both profiles (a measured float_ms and int8_ms), that the K
first layers of the ranking are the ones kept float, and that the result still runs.
"""
from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from infertune.data.dataset import Dataset
from infertune.data.preprocess import resolve_preprocess
from infertune.errors import ConfigError
from infertune.passes import PassContext, apply_passes
from infertune.passes._layer_cost import FREE, RATIO, UNMATCHED, LayerCost, rank_by_cost, \
    ranked_rows
from infertune.passes._profile_match import Graph, ort_row_node
from infertune.passes.mixed_precision import MixedPrecisionConfig
from infertune.types import InputSpec, ModelHandle

from precision_helpers import onnx_nodes, outputs, sqnr_db

SIZE = 32  # big enough that every conv runs a measurable kernel, small enough for seconds
SQNR_MIXED = 25.0  # as SQNR_INT8 in test_pass_int8.py: INT8 with some layers float does no worse
LAYERS = ("/c0/Conv", "/dw/Conv", "/pw/Conv", "/c3/Conv", "/fc/Gemm")
KEEP = 2


# ------------------------------------------------------------------------- pure ranking
def test_rank_by_cost_hand_worked():
    floor = 0.02
    rows = [LayerCost("A", 20.0, 1.0, 0.4),    # cost 0.6, benefit 1e-2    -> 0.01667 per ms
            LayerCost("B", 30.0, 2.0, 1.0),    # cost 1.0, benefit 1e-3    -> 0.001
            LayerCost("C", 10.0, 5.0, 1.0),    # cost 4.0, benefit 1e-1    -> 0.025
            LayerCost("D", 40.0, 0.5, 0.6),    # cost -0.1 -> floor 0.02, benefit 1e-4 -> 0.005
            LayerCost("E", 25.0, 0.30, 0.29),  # cost 0.01 -> floor, benefit 3.162e-3 -> 0.158
            LayerCost("F", 5.0, None, 0.3),    # not matched in the float profile
            LayerCost("G", None, None, None),  # not matched, not measured: last
            LayerCost("H", 15.0, 0.2, None)]   # not matched in the INT8 profile
    # matched by benefit per ms (E > C > A > D > B), then unmatched by SQNR (F, H, None)
    assert [r.layer for r in rank_by_cost(rows, floor)] == list("ECADBFHG")
    assert [r.group(floor) for r in rank_by_cost(rows, floor)] == \
        [FREE, RATIO, RATIO, FREE, RATIO, UNMATCHED, UNMATCHED, UNMATCHED]
    out = ranked_rows(rows, floor)
    json.dumps(out)  # the pass details must serialise
    by = {r["layer"]: r for r in out}
    assert by["D"]["cost_ms"] == pytest.approx(-0.1, abs=1e-9)
    assert by["A"]["benefit"] == pytest.approx(0.01, rel=1e-12)
    assert by["F"]["cost_ms"] is None and by["G"]["benefit"] == 0.0
    assert [r["rank"] for r in out] == list(range(1, 9))


def test_a_free_layer_is_still_ranked_by_what_it_buys():
    """EfficientNet-Lite0 on OpenVINO, as measured (floor 0.013 ms): a depthwise conv at
    35 dB that is no faster in INT8 (-0.01 ms) buys 3.2e-4 / 0.013 = 0.024 per ms; the first
    depthwise conv at 9.1 dB costing 0.019 ms buys 0.123 / 0.019 = 6.5 per ms: it comes first."""
    rows = [LayerCost("b8_dw", 35.0, 0.05, 0.06), LayerCost("b0_dw", 9.1, 0.040, 0.021)]
    assert [r.layer for r in rank_by_cost(rows, 0.013)] == ["b0_dw", "b8_dw"]


def test_the_floor_bounds_the_cost_and_a_zero_cost_with_no_floor_comes_first():
    rows = [LayerCost("paid", 10.0, 1.0, 0.5), LayerCost("zero", 60.0, 0.5, 0.5),
            LayerCost("at_floor", 50.0, 0.75, 0.5)]
    # floor 0.25: paid 0.1/0.5 = 0.2, at_floor 1e-5/0.25 = 4e-5, zero 1e-6/0.25 = 4e-6
    assert [r.layer for r in rank_by_cost(rows, 0.25)] == ["paid", "at_floor", "zero"]
    assert [r.group(0.25) for r in rank_by_cost(rows, 0.25)] == [RATIO, FREE, FREE]
    # no floor: the zero-cost layer is infinitely cheap; paid 0.2 > at_floor 1e-5/0.25
    assert [r.layer for r in rank_by_cost(rows, 0.0)] == ["zero", "paid", "at_floor"]


# ------------------------------------------------------------ matching profile rows
def _graph(tmp_path, nodes, inits=("w1", "w2", "w3")):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    weights = [helper.make_tensor(n, TensorProto.FLOAT, [1, 1, 1, 1], [1.0]) for n in inits]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], weights))
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    return Graph.load(path)


def test_ort_names_resolve_to_their_conv(tmp_path):
    # c1 -> relu (read by c2 and add); c2 -> add: the add's one single-reader input is c2's
    g = _graph(tmp_path, [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1"),
                          helper.make_node("Relu", ["a"], ["r"], name="relu"),
                          helper.make_node("Conv", ["r", "w2"], ["b"], name="c2"),
                          helper.make_node("Add", ["b", "r"], ["y"], name="add")])
    assert ort_row_node("c1", g) == ("c1", [])
    assert ort_row_node("c1", g, "FusedConv") == ("c1", ["relu"])
    assert ort_row_node("c1_token_19", g) == ("c1", [])  # QDQ fusion (QLinearConv)
    assert ort_row_node("r_nchwc", g) == ("c1", ["relu"])  # NCHWc conv fused with relu
    assert ort_row_node("y_nchwc", g) == ("c2", ["add"])   # NCHWc conv fused with the sum
    assert ort_row_node("ReorderOutput", g) is None


def test_ort_sum_of_two_single_reader_convs_is_ambiguous(tmp_path):
    g = _graph(tmp_path, [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1"),
                          helper.make_node("Conv", ["x", "w2"], ["b"], name="c2"),
                          helper.make_node("Add", ["a", "b"], ["y"], name="add")])
    assert ort_row_node("y_nchwc", g) is None


# ----------------------------------------------------------------------- end to end
class _Net(nn.Module):
    """3-channel first conv (+BN, ReLU), depthwise, pointwise, conv in a residual, linear."""

    def __init__(self):
        super().__init__()
        self.c0, self.b0 = nn.Conv2d(3, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.c3 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.b0(self.c0(x)))
        x = self.pw(torch.relu(self.dw(x)))
        x = x + torch.relu(self.c3(x))
        return self.fc(x.mean((2, 3)))


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)


@pytest.fixture
def net():
    torch.manual_seed(0)
    spec = InputSpec(shape=("batch", 3, SIZE, SIZE))
    return ModelHandle(format="torch", obj=_Net().eval(), input_spec=spec, name="net",
                       source="test")


def _run(model, tmp_path, **options):
    data = Dataset(_images(24), None, [], "seeded normal images", resolve_preprocess("none"))
    ctx = PassContext(workdir=tmp_path / "work", calibration=data, threads=1)
    opts = {"keep": str(KEEP), "rank": "cost", "samples": "16", "eval_samples": "8", **options}
    out, reports = apply_passes(model, [("mixed_precision", opts)], ctx)
    return out, reports[-1]


def _check_ranking(report, runtime):
    json.dumps(report)  # the ledger is written to report.json
    cost = report["cost_ranking"]
    assert cost["runtime"] == runtime and cost["unmatched"] == [] and cost["method"]
    assert sorted(r["layer"] for r in cost["layers"]) == sorted(LAYERS)
    for row in cost["layers"]:
        assert row["float_ms"] > 0 and row["int8_ms"] > 0, row  # matched in both profiles
        assert row["cost_ms"] == pytest.approx(row["float_ms"] - row["int8_ms"], abs=1e-6)
        assert row["benefit"] == pytest.approx(10 ** (-row["sqnr_db"] / 10), rel=1e-9)
    kept = [r["layer"] for r in cost["layers"][:KEEP]]
    assert report["kept_by_choice"] == kept
    assert [k["layer"] for k in report["kept_float"]] == kept
    assert {r["layer"] for r in report["sensitivity"]} == set(LAYERS)  # still recorded
    return kept


def _float_weights(path, layer) -> bool:
    """Whether the layer's weight and bias are float initializers (no DequantizeLinear)."""
    nodes = onnx_nodes(path)
    producers = {o: n.op_type for n in nodes for o in n.output}
    node = next(n for n in nodes if n.name == layer)
    return all(producers.get(name) is None for name in node.input[1:])


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_cost_rank_end_to_end_qdq(net, tmp_path, runtime):
    out, report = _run(net, tmp_path, cost_runtime=runtime)
    kept = _check_ranking(report, runtime)
    # kept layers compute in float: their weights are float initializers. (Q/DQ on their
    # input or output activations can remain where a neighbour is INT8: ORT quantizes a
    # tensor that any quantized node reads.) Every other layer has dequantized weights.
    for layer in LAYERS:
        assert _float_weights(out.path, layer) == (layer in kept), layer
    assert sorted(report["quantized"]) == sorted(set(LAYERS) - set(kept))
    x = _images(8)
    reference = outputs(net, x)
    assert sqnr_db(reference, outputs(out, x)) >= SQNR_MIXED
    if runtime == "openvino":  # the QDQ result also runs where the cost was measured
        import openvino as ov

        compiled = ov.Core().compile_model(out.path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        got = np.asarray(compiled({0: x})[compiled.outputs[0]]).reshape(len(x), -1)
        assert sqnr_db(reference, got) >= SQNR_MIXED


def test_cost_rank_end_to_end_nncf(net, tmp_path):
    pytest.importorskip("nncf")
    out, report = _run(net, tmp_path, cost_runtime="openvino", engine="nncf")
    kept = _check_ranking(report, "openvino")
    assert out.format == "openvino"
    assert set(report["quantized"]) == set(LAYERS) - set(kept)  # NNCF's int8-weight ops
    x = _images(8)
    assert sqnr_db(outputs(net, x), outputs(out, x)) >= SQNR_MIXED


# ------------------------------------------------------------------------ config
def test_config_defaults_are_the_old_behaviour():
    config = MixedPrecisionConfig()
    assert (config.rank, config.cost_runtime) == ("sensitivity", "onnxruntime")


@pytest.mark.parametrize("options,message", [
    ({"rank": "latency"}, "rank must be one of sensitivity, cost, not 'latency'"),
    ({"cost_runtime": "tensorrt"}, "cost_runtime must be one of onnxruntime, openvino"),
    ({"rank": "cost", "engine": "nncf"}, "set cost_runtime=openvino"),
])
def test_bad_cost_options(net, tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        apply_passes(net, [("mixed_precision", options)], PassContext(workdir=tmp_path))
    with pytest.raises(ValueError, match=message.split(",")[0]):
        MixedPrecisionConfig(**options)


# ------------------------------------------------------------------ the run's cache
def test_one_runs_builds_share_the_sensitivity_and_the_profiles(net, tmp_path, monkeypatch):
    """Two pipelines of one run (own workdirs, one cache_dir), K=2 and K=3: the sensitivity
    analysis and the per-layer profiles are computed once, so the second build reads the
    same numbers and its kept layers extend the first's. Without a run cache, each computes."""
    from infertune.passes import _layer_cost, sensitivity

    calls = {"analyze": 0, "measure": 0}

    def counted(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(sensitivity, "analyze", counted("analyze", sensitivity.analyze))
    monkeypatch.setattr(_layer_cost, "measure", counted("measure", _layer_cost.measure))
    data = Dataset(_images(24), None, [], "seeded normal images", resolve_preprocess("none"))

    def build(k, workdir, cache_dir):
        ctx = PassContext(workdir=tmp_path / workdir, calibration=data, threads=1,
                          cache_dir=cache_dir)
        opts = {"keep": str(k), "rank": "cost", "samples": "16", "eval_samples": "8"}
        return apply_passes(net, [("mixed_precision", opts)], ctx)[1][-1]

    first = build(2, "a", tmp_path / "cache")
    second = build(3, "b", tmp_path / "cache")
    assert calls == {"analyze": 1, "measure": 1}
    assert second["cost_ranking"]["layers"] == first["cost_ranking"]["layers"]
    assert second["sensitivity"] == first["sensitivity"]
    assert second["kept_by_choice"][:2] == first["kept_by_choice"]
    assert len(list((tmp_path / "cache" / "results").glob("*.json"))) == 2

    build(2, "c", None)
    assert calls == {"analyze": 2, "measure": 2}
