"""Report → table rows and chart series, checked by hand against tests/report/fixtures.py
(made-up numbers; the expected values are worked out in the comments)."""
from __future__ import annotations

import pytest

from infertune.report import charts, gaps, tables
from infertune.report import fields as f

from .fixtures import make_report, make_run, with_faster_own_measurement

# Chart and table arithmetic is exact apart from float rounding.
TOL = 1e-9


def test_stage_rows_pick_best_within_budget_per_stage_and_runtime():
    rows = tables.stage_rows(make_run())
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
    ort = {r["stage"]: r for r in tables.stage_rows(make_run(report))["onnxruntime"]}
    assert ort["quantized"]["id"] == "int8_ort"          # 20 MB < 21 MB
    report["candidates"][3]["within_budget"] = False      # int8_ort over budget
    ort = {r["stage"]: r for r in tables.stage_rows(make_run(report))["onnxruntime"]}
    assert ort["quantized"]["id"] == "dyn_ort"


def test_fraction_accuracies_are_shown_in_percent_and_drops_stay_points():
    report = make_report()
    for cand in report["candidates"]:
        if cand["accuracy"]:
            cand["accuracy"]["top1"] = {k: v / 100 for k, v in cand["accuracy"]["top1"].items()}
    run = make_run(report)
    assert f.accuracy_scale(run) == 100.0
    assert f.metric_triple(run.pick, run) == pytest.approx((89.6, 87.6, 91.4))
    assert f.drop_triple(run.pick) == (0.4, 0.1, 0.8)


def test_agreement_metric_without_labels():
    report = make_report()
    report["data"]["metric"] = "agreement"
    report["candidates"][3]["fidelity"]["top1_agreement_ci"] = [0.99, 0.998]
    run = make_run(report)
    assert f.metric_name(run) == "top-1 agreement"
    # stored as fractions (1 − 0.4/100 = 0.996): shown in percent, interval from the _ci list
    assert f.metric_triple(run.pick, run) == pytest.approx((99.6, 99.0, 99.8))


def test_budget_line_uses_budget_points_for_a_relative_budget():
    report = make_report()
    report["budget"].update(drop_type="relative", max_drop=1.0, budget_points=0.9)
    assert f.max_drop(make_run(report)) == 0.9


def test_unmeasured_groups_nulls_with_their_notes():
    report = make_report()
    report["machine_limits"] = None
    report["machine_limits_note"] = "no STREAM run"
    found = {g["what"]: g for g in gaps.unmeasured(make_run(report))}
    assert found["machine_limits"] == {"what": "machine_limits", "note": "no STREAM run",
                                       "where": ["run"]}
    assert found["energy_j_per_image"]["note"] == "RAPL not readable here"
    assert len(found["energy_j_per_image"]["where"]) == 9      # the 9 measured candidates
    assert found["throughput at batch 8"]["note"] == gaps.NO_NOTE
    assert {r["id"] for r in gaps.not_run(make_run(report))} == {"trt", "ov_int8"}
    report["machine_limits"] = {"fp32_gflops": None, "int8_gops": None, "mem_gbs": None,
                                "method": "not measured: no benchmark"}
    found = {g["what"]: g for g in gaps.unmeasured(make_run(report))}
    assert found["machine limit mem_gbs"]["note"] == "not measured: no benchmark"


def test_unlabelled_runs_list_no_confusion_matrix_gap():
    report = make_report()
    report["data"]["labelled"] = False
    for cand in report["candidates"]:
        cand["confusion_matrix"] = None
    whats = {g["what"] for g in gaps.unmeasured(make_run(report))}
    assert "confusion_matrix" not in whats and "accuracy" not in whats
    report["data"]["labelled"] = True
    assert "confusion_matrix" in {g["what"] for g in gaps.unmeasured(make_run(report))}


def test_pareto_series():
    s = charts.pareto_series(make_run())
    assert len(s["points"]) == 9
    # mixed_ort at its rounds' median 20.6 ms, not its full measurement's 22 ms
    assert s["frontier"] == [(15.0, 0.9), (20.0, 0.4), (20.6, 0.1), (48.0, 0.0)]
    assert [p["id"] for p in s["points"] if p["pick"]] == ["int8_ort"]
    assert s["max_drop"] == 1.0


def test_per_layer_series_folds_the_tail():
    run = make_run()
    rows = charts.per_layer_series(run.baseline, top=3)
    # conv0..conv9 take 10..1 ms, fc 5 ms: the tail is 7+6+5+4+3+2+1 + 5 = 33 ms
    assert rows == [("conv0", 10.0), ("conv1", 9.0), ("conv2", 8.0), ("8 other layers", 33.0)]
    assert charts.per_layer_series(run.by_id["fused_ort"]) is None
    assert charts.per_layer_series(None) is None


def test_latency_and_confusion_series():
    run = make_run()
    series = charts.latency_series(run)
    assert series[0][0].startswith("fold_bn + prune_channels")    # 15 ms, fastest
    assert len(series[0][1]) == 21 and series[0][2] is None       # not in the rounds
    # the pick and mixed: full-measurement samples, with the rounds' median beside them
    assert [(s[0], s[2]) for s in series[1:3]] == [
        ("fold_bn + int8_static → onnxruntime", 20.0),
        ("fold_bn + mixed_precision → onnxruntime", 20.6)]
    matrix = charts.confusion_series(run.baseline)
    assert matrix[0] == pytest.approx([50 / 52, 2 / 52, 0.0], abs=TOL)
    assert all(sum(row) == pytest.approx(1.0, abs=TOL) for row in matrix)
    # the pick's {"labels", "matrix"} form: row [3, 44, 3] of 50
    assert charts.confusion_series(run.pick)[1] == pytest.approx(
        [0.06, 0.88, 0.06], abs=TOL)


def test_radar_series_normalises_to_the_best_shown():
    s = charts.radar_series(make_run())
    assert s["axes"] == ["speed", "accuracy", "size", "throughput", "memory"]
    labels = list(s["series"])
    assert len(labels) == 4 and labels[0] == "fold_bn + int8_static → onnxruntime"
    # pick: speed 15/20, accuracy 1 − 0.4/1.0, size 10/20, throughput 50/66.67, memory 1
    assert s["series"][labels[0]] == pytest.approx([0.75, 0.6, 0.5, 0.75, 1.0], abs=1e-6)


def test_roofline_series():
    s = charts.roofline_series(make_run())
    by_id = {p["id"]: p for p in s["points"]}
    # int8_ort: 2 GOP over 20 MB = 100 op/B; 2 GOP / 20 ms = 100 GOP/s; ceiling min(800, 20·100)
    assert by_id["int8_ort"]["intensity"] == pytest.approx(100.0)
    assert by_id["int8_ort"]["achieved_gops"] == pytest.approx(100.0)
    assert by_id["int8_ort"]["bound_gops"] == pytest.approx(800.0)
    # baseline FP32: 25 op/B, 20 GOP/s, ceiling min(200, 500)
    assert (by_id["base"]["intensity"], by_id["base"]["bound_gops"]) == pytest.approx((25, 200))
    report = make_report()
    report["machine_limits"] = None
    assert charts.roofline_series(make_run(report)) is None


def test_stage_best_is_chosen_by_the_figure_that_decided_the_pick():
    run = make_run(with_faster_own_measurement(make_report()))
    ort = {r["stage"]: r for r in tables.stage_rows(run)["onnxruntime"]}
    # by the full measurements int8_minmax (19 ms) would win; the rounds say 20.0 < 20.8
    assert ort["quantized"]["id"] == "int8_ort" and ort["quantized"]["pick"]
    assert ort["quantized"]["p50_ms"] == 20.0 and ort["quantized"]["p50_rounds"]
    assert f.decisive_p50(run.by_id["int8_minmax"], run) == 20.8
    assert f.decisive_p50(run.by_id["dyn_ort"], run) == 120.0      # not in the rounds
    assert not f.from_rounds(run.by_id["dyn_ort"], run)


def test_decisive_p50_from_the_rounds_alone():
    from infertune.report.run_report import FinalComparison

    report = make_report()
    final = FinalComparison.from_json(report["final_comparison"])
    run = make_run(report)
    assert f.decisive_p50(run.by_id["mixed_ort"], final) == 20.6
    assert f.decisive_p50(run.by_id["dyn_ort"], final) == 120.0
    assert f.decisive_p50(run.by_id["mixed_ort"], None) == 22.0    # no rounds: full p50


def test_precision_shows_what_ran_and_what_was_asked():
    report = make_report()
    report["candidates"][3].update(ran_precision="fp32",
                                   ran_precision_note="the runtime ran no int8 kernel")
    row = next(r for r in tables.candidate_rows(make_run(report)) if r["id"] == "int8_ort")
    assert row["precision"] == "fp32 (asked int8)"
    row = next(r for r in tables.candidate_rows(make_run()) if r["id"] == "int8_ort")
    assert row["precision"] == "int8"
