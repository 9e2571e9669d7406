"""Head-aware mixed precision: on a two-head detector, `mixed_precision(keep=K,
head_first=true)` keeps the layers feeding the [yolo] outputs first (most sensitive of them
first), and the sensitivity ranking measures every head's output, not only the first."""
from __future__ import annotations

import numpy as np
import onnx

from detector_cfgs import two_head_detector

from infertune.data import Dataset
from infertune.data.preprocess import resolve_preprocess
from infertune.load import load_model
from infertune.passes import PassContext, apply_passes
from infertune.passes.int8_static import as_onnx
from infertune.passes.mixed_precision import head_first, head_layers
from infertune.passes.sensitivity import run_onnx
from infertune.search import space


def _setup(tmp_path):
    cfg = tmp_path / "det.cfg"
    cfg.write_text(two_head_detector())
    handle = load_model(str(cfg))
    x = np.random.default_rng(0).random((16, 3, 64, 64), dtype=np.float32)
    ctx = PassContext(workdir=tmp_path / "work",
                      calibration=Dataset(x, None, [], "uniform images", resolve_preprocess("none")))
    return handle, ctx


def _conv_feeding(graph, tensor: str) -> str:
    producer = {o: n for n in graph.node for o in n.output}
    node = producer[tensor]
    while node.op_type != "Conv":
        node = producer[node.input[0]]
    return node.name


def test_head_layers_are_the_convs_nearest_each_output(tmp_path):
    handle, ctx = _setup(tmp_path)
    source, _ = as_onnx(handle, ctx)
    graph = onnx.load(str(source.path)).graph
    assert len(graph.output) == 2
    head = head_layers(source.path)
    last = {_conv_feeding(graph, o.name) for o in graph.output}
    assert last <= set(head) and len(head) == 4          # each output's conv and the one before
    convs = [n.name for n in graph.node if n.op_type == "Conv"]
    assert set(head) < set(convs) and convs[0] not in head  # the backbone's first conv is not
    assert len(head_layers(source.path, depth=1)) == 2


def test_sensitivity_measures_every_output(tmp_path):
    handle, ctx = _setup(tmp_path)
    source, _ = as_onnx(handle, ctx)
    out = run_onnx(source.path, ctx.calibration.x[:3], 1)
    assert out.shape == (3, 21 * 8 * 8 + 21 * 16 * 16)   # both heads' maps, side by side


def test_head_first_reorders_a_ranking():
    rows = [{"rank": i + 1, "layer": name} for i, name in enumerate("abcde")]
    got = head_first(rows, ["d", "b"])
    assert [r["layer"] for r in got] == ["b", "d", "a", "c", "e"]
    assert [r["rank"] for r in got] == [1, 2, 3, 4, 5]
    assert [r["head"] for r in got] == [True, True, False, False, False]


def test_keep_k_head_first_keeps_head_layers_float(tmp_path):
    handle, ctx = _setup(tmp_path)
    out, reports = apply_passes(handle, [("mixed_precision", {"keep": "2", "head_first": True,
                                                               "samples": 8, "eval_samples": 8})],
                                ctx)
    rep = reports[-1]
    assert rep["applied"], rep
    source, _ = as_onnx(handle, PassContext(workdir=tmp_path / "again",
                                            calibration=ctx.calibration))
    head = head_layers(source.path)
    kept = rep["kept_by_choice"]
    assert len(kept) == 2 and set(kept) <= set(head)
    ranked = rep["sensitivity"]
    assert [r["head"] for r in ranked[:len(head)]] == [True] * len(head)
    assert kept == [r["layer"] for r in ranked[:2]]


def test_the_planner_asks_a_detector_for_head_first(tmp_path):
    ctx = space.PlanContext(model_key={"source": "d"}, model_format="torch",
                            runtimes=("onnxruntime",), registered_passes=frozenset(
                                {"fold_bn", "int8_static", "mixed_precision"}), detector=True)
    int8 = space.make(ctx, "quantized", [space.step("int8_static", engine="ort")],
                      "onnxruntime", "int8")
    plans = space.mixed(ctx, int8, n_layers=6)
    assert plans and all(p.plan.recipe[-1].options["head_first"] is True for p in plans)
    plain = space.mixed(space.PlanContext(**{**ctx.__dict__, "detector": False}), int8, 6)
    assert all("head_first" not in p.plan.recipe[-1].options for p in plain)
