"""Report → table rows and chart series, checked by hand against tests/report/fixtures.py
(made-up numbers; the expected values are worked out in the comments)."""
from __future__ import annotations

import pytest

from infertune.report import charts, gaps, tables
from infertune.report import fields as f

from .fixtures import make_report

# Chart and table arithmetic is exact apart from float rounding.
TOL = 1e-9


def test_stage_rows_pick_best_within_budget_per_stage_and_runtime():
    rows = tables.stage_rows(make_report())
    assert list(rows) == ["torch", "onnxruntime", "openvino"]   # order of first appearance
    ort = {r["stage"]: r for r in rows["onnxruntime"]}
    assert [r["stage"] for r in rows["onnxruntime"]] == ["fused", "quantized", "mixed",
                                                          "pruned", "combined"]
    # quantized: int8_static 20 ms beats int8_dynamic 120 ms; fused: 50 ms beats 51 ms
    assert ort["quantized"]["id"] == "int8_ort" and ort["quantized"]["pick"]
    assert ort["fused"]["id"] == "fused_ort" and ort["fused"]["alternatives"] == 1
    # combined's only candidate is over budget: shown, marked
    assert ort["combined"]["over_budget"] and ort["combined"]["within_budget"] is False
    assert ort["quantized"]["metric"] == (89.6, pytest.approx(87.6), pytest.approx(91.4))
    assert ort["quantized"]["throughput_ips"] == pytest.approx(50.0)
    # the screened-out OpenVINO INT8 never reaches the stage table
    assert [r["id"] for r in rows["openvino"]] == ["fused_ov"]


def test_stage_choice_follows_the_objective():
    report = make_report()
    report["budget"]["objective"] = "size"
    ort = {r["stage"]: r for r in tables.stage_rows(report)["onnxruntime"]}
    assert ort["quantized"]["id"] == "int8_ort"          # 20 MB < 21 MB
    report["candidates"][3]["within_budget"] = False      # int8_ort over budget
    ort = {r["stage"]: r for r in tables.stage_rows(report)["onnxruntime"]}
    assert ort["quantized"]["id"] == "dyn_ort"


def test_fraction_accuracies_are_shown_in_percent_and_drops_stay_points():
    report = make_report()
    for cand in report["candidates"]:
        if cand["accuracy"]:
            cand["accuracy"]["top1"] = {k: v / 100 for k, v in cand["accuracy"]["top1"].items()}
    pick = f.pick(report)
    assert f.accuracy_scale(report) == 100.0
    assert f.metric_triple(pick, report) == pytest.approx((89.6, 87.6, 91.4))
    assert f.drop_triple(pick, report) == (0.4, 0.1, 0.8)


def test_agreement_metric_without_labels():
    report = make_report()
    report["data"]["metric"] = "agreement"
    pick = f.pick(report)
    pick["fidelity"]["top1_agreement_ci"] = [0.99, 0.998]
    assert f.metric_name(report) == "top-1 agreement"
    # stored as fractions (1 − 0.4/100 = 0.996): shown in percent, interval from the _ci list
    assert f.metric_triple(pick, report) == pytest.approx((99.6, 99.0, 99.8))


def test_budget_line_uses_budget_points_for_a_relative_budget():
    report = make_report()
    report["budget"].update(drop_type="relative", max_drop=1.0, budget_points=0.9)
    assert f.max_drop(report) == 0.9


def test_unmeasured_groups_nulls_with_their_notes():
    report = make_report()
    report["machine_limits"] = None
    report["machine_limits_note"] = "no STREAM run"
    found = {g["what"]: g for g in gaps.unmeasured(report)}
    assert found["machine_limits"] == {"what": "machine_limits", "note": "no STREAM run",
                                       "where": ["run"]}
    assert found["energy_j_per_image"]["note"] == "RAPL not readable here"
    assert len(found["energy_j_per_image"]["where"]) == 9      # the 9 measured candidates
    assert found["throughput at batch 8"]["note"] == gaps.NO_NOTE
    assert {r["id"] for r in gaps.not_run(report)} == {"trt", "ov_int8"}
    report["machine_limits"] = {"fp32_gflops": None, "int8_gops": None, "mem_gbs": None,
                                "method": "not measured: no benchmark"}
    found = {g["what"]: g for g in gaps.unmeasured(report)}
    assert found["machine limit mem_gbs"]["note"] == "not measured: no benchmark"


def test_pareto_series():
    s = charts.pareto_series(make_report())
    assert len(s["points"]) == 9
    assert s["frontier"] == [(15.0, 0.9), (20.0, 0.4), (22.0, 0.1), (48.0, 0.0)]
    assert [p["id"] for p in s["points"] if p["pick"]] == ["int8_ort"]
    assert s["max_drop"] == 1.0


def test_per_layer_series_folds_the_tail():
    base = f.baseline(make_report())
    rows = charts.per_layer_series(base, top=3)
    # conv0..conv9 take 10..1 ms, fc 5 ms: the tail is 7+6+5+4+3+2+1 + 5 = 33 ms
    assert rows == [("conv0", 10.0), ("conv1", 9.0), ("conv2", 8.0), ("8 other layers", 33.0)]
    assert charts.per_layer_series({"per_layer_ms": None}) is None


def test_latency_and_confusion_series():
    series = charts.latency_series(make_report())
    assert series[0][0].startswith("fold_bn + prune_channels")    # 15 ms, fastest
    assert len(series[0][1]) == 21
    matrix = charts.confusion_series(f.baseline(make_report()))
    assert matrix[0] == pytest.approx([50 / 52, 2 / 52, 0.0], abs=TOL)
    assert all(sum(row) == pytest.approx(1.0, abs=TOL) for row in matrix)
    # the pick's {"labels", "matrix"} form: row [3, 44, 3] of 50
    assert charts.confusion_series(f.pick(make_report()))[1] == pytest.approx(
        [0.06, 0.88, 0.06], abs=TOL)


def test_radar_series_normalises_to_the_best_shown():
    s = charts.radar_series(make_report())
    assert s["axes"] == ["speed", "accuracy", "size", "throughput", "memory"]
    labels = list(s["series"])
    assert len(labels) == 4 and labels[0] == "fold_bn + int8_static → onnxruntime"
    # pick: speed 15/20, accuracy 1 − 0.4/1.0, size 10/20, throughput 50/66.67, memory 1
    assert s["series"][labels[0]] == pytest.approx([0.75, 0.6, 0.5, 0.75, 1.0], abs=1e-6)


def test_roofline_series():
    s = charts.roofline_series(make_report())
    by_id = {p["id"]: p for p in s["points"]}
    # int8_ort: 2 GOP over 20 MB = 100 op/B; 2 GOP / 20 ms = 100 GOP/s; ceiling min(800, 20·100)
    assert by_id["int8_ort"]["intensity"] == pytest.approx(100.0)
    assert by_id["int8_ort"]["achieved_gops"] == pytest.approx(100.0)
    assert by_id["int8_ort"]["bound_gops"] == pytest.approx(800.0)
    # baseline FP32: 25 op/B, 20 GOP/s, ceiling min(200, 500)
    assert (by_id["base"]["intensity"], by_id["base"]["bound_gops"]) == pytest.approx((25, 200))
    report = make_report()
    report["machine_limits"] = None
    assert charts.roofline_series(report) is None
