"""explain(): the causes infertune can detect when a step does not speed things up."""
from __future__ import annotations

from dataclasses import replace

import pytest

from infertune.report import ledger
from infertune.search.candidate import Candidate, PassReport

from .fixtures import MIXED_PASS, make_report, make_run


def _raw(report, cid):
    """The report.json object of candidate `cid` (to change before parsing)."""
    return next(c for c in report["candidates"] if c["id"] == cid)


def _explain(report, cid):
    run = make_run(report)
    return ledger.explain(run.by_id[cid], run)


def _text(reasons):
    return " | ".join(reasons)


def test_faster_candidates_and_the_baseline_need_no_explanation():
    report = make_report()
    for cid in ("base", "fused_ort", "int8_ort", "mixed_ort", "trt"):
        assert _explain(report, cid) == [], cid


def test_dynamic_int8_is_named():
    report = make_report()
    reasons = _explain(report, "dyn_ort")
    assert "dynamic INT8" in _text(reasons)
    assert "VNNI" not in _text(reasons)           # the made-up CPU has avx512_vnni


def test_int8_without_vnni_or_amx():
    report = make_report()
    report["machine"]["cpu"]["isa"]["avx512_vnni"] = False
    report["final_comparison"] = None                          # its full p50 is shown
    _raw(report, "int8_ort")["latency_ms"]["p50"] = 49.0      # 50/49 = 1.02: no gain
    assert "no VNNI/AMX" in _text(_explain(report, "int8_ort"))
    report["machine"]["cpu"]["isa"]["amx_int8"] = True
    assert "VNNI" not in _text(_explain(report, "int8_ort"))
    del report["machine"]["cpu"]["isa"]
    assert "not recorded" in _text(_explain(report, "int8_ort"))


def test_magnitude_pruning_and_noise():
    report = make_report()
    text = _text(_explain(report, "pruned_ort"))
    assert "dense kernels" in text
    assert "within the measurement spread" in text     # +1 % with cv 3 % on both sides


def test_channels_last_layout():
    report = make_report()
    assert "NCHW again" in _text(_explain(report, "cl_ort"))
    _raw(report, "cl_ort")["runtime"] = "torch"
    # on torch its parent is on onnxruntime still; the message is the torch one
    assert "converts the input to NHWC" in _text(_explain(report, "cl_ort"))


def test_macs_are_not_latency_compute_or_memory_bound():
    report = make_report()
    combined = _raw(report, "combined_ort")
    combined["latency_ms"]["p50"] = 19.5      # parent int8_ort 20 ms: ratio 1.026
    combined["latency_ms"]["cv"] = 0.001      # not noise
    text = _text(_explain(report, "combined_ort"))
    # 1.0 → 0.6 GMAC = 40 % fewer; intensity 1.2 GOP / 10 MB = 120 op/B > ridge 800/20 = 40
    assert "MACs fell by 40 %" in text and "thinner or factorised" in text
    report["machine_limits"]["mem_gbs"] = 1.0     # ridge 800 op/B: now memory-bound
    assert "memory-bound" in _text(_explain(report, "combined_ort"))


def test_tiny_models_are_overhead_dominated():
    report = make_report()
    pruned = _raw(report, "pruned_ort")
    pruned["macs"] = 10e6
    assert "too small to gain" in _text(_explain(report, "pruned_ort"))


def test_no_detectable_cause_says_so():
    report = make_report()
    cand = _raw(report, "pruned_ort")
    cand["recipe"] = [{"pass": "fold_bn", "options": {}}]
    cand["latency_ms"]["p50"] = 50.5            # parent 50 ms: 0.99×, not noise below
    cand["latency_ms"]["cv"] = _raw(report, "fused_ort")["latency_ms"]["cv"] = 0.001
    assert _explain(report, "pruned_ort") == [
        "no cause infertune can detect; compare the per-layer times"]


def test_no_gain_uses_the_rounds_p50_where_there_is_one():
    report = make_report()
    # mixed_ort's own measurement (22 ms) vs the rounds (20.6 ms): against fused_ort's
    # 50 ms either is a gain; against a parent at 22.5 ms only the rounds' figure is
    _raw(report, "mixed_ort")["parent_id"] = "cl_ort"
    _raw(report, "cl_ort")["latency_ms"]["p50"] = 22.5
    assert _explain(report, "mixed_ort") == []                # 22.5 / 20.6 = 1.09
    report["final_comparison"]["rows"].pop()                  # mixed_ort's row
    assert _explain(report, "mixed_ort") != []               # 22.5 / 22 = 1.02


def test_slow_rows_and_mixed_ledger():
    run = make_run()
    assert {r["id"] for r in ledger.slow_rows(run)} == {"dyn_ort", "pruned_ort", "cl_ort"}
    rows = ledger.mixed_ledger_rows(run)
    # conv0 and fc added at K=2: 0.6 ms for 0.3 points → 2 ms per point
    assert [(r["candidate"], r["layers"]) for r in rows] == [
        ("fold_bn + mixed_precision → onnxruntime", ["conv0", "fc"])]
    assert rows[0]["ms_per_point"] == pytest.approx(2.0)


def test_an_older_ledger_with_one_layer_per_entry_is_read():
    report = make_report()
    report["mixed_precision"] = {"ledger": [{"layer": "conv0", "cost_ms": 1.5,
                                             "drop_saved": 0.3}]}
    rows = ledger.mixed_ledger_rows(make_run(report))
    assert rows[0]["layers"] == ["conv0"] and rows[0]["ms_per_point"] == pytest.approx(5.0)


def test_kept_float_layers_reads_what_the_pass_writes():
    run = make_run()
    assert ledger.kept_float_layers(run.by_id["mixed_ort"]) == ["conv0", "fc"]
    # a report from before kept_by_choice: keep=2 → the two most sensitive by rank (conv0
    # rank 1, fc rank 2); softmax is kept float by the quantizer, not by mixed precision
    older = {k: v for k, v in MIXED_PASS.details.items() if k != "kept_by_choice"}
    assert ledger.kept_float_layers(_with_pass(older)) == ["conv0", "fc"]
    assert ledger.kept_float_layers(run.pick) == []           # no mixed_precision step
    assert ledger.kept_float_layers(run.by_id["trt"]) == []   # never built


def _with_pass(details, applied=True):
    rep = PassReport("mixed_precision", applied, None if applied else "nothing to quantize",
                     "onnx", details)
    cand = make_run().by_id["mixed_ort"]
    return cand.with_(screen=replace(cand.screen, passes=(rep,)))


def test_kept_float_layers_named_keep_and_a_step_that_did_not_apply():
    named = _with_pass({"keep": ["fc", "conv1"], "kept_float": [
        {"layer": "fc", "reason": "named in keep"}, {"layer": "conv1", "reason": "named in keep"},
        {"layer": "softmax", "reason": "kept float"}]})
    assert ledger.kept_float_layers(named) == ["fc", "conv1"]
    # keep=K ≥ the layers: the pass does not apply and records its would-be choice as kept
    skipped = _with_pass({"kept": [{"layer": "conv0", "reason": "sensitivity rank 1 of 1"}]},
                         applied=False)
    assert ledger.kept_float_layers(skipped) == ["conv0"]
    # the report.json round trip keeps the pass's keys
    again = Candidate.from_json(named.to_json())
    assert ledger.kept_float_layers(again) == ["fc", "conv1"]


def test_kept_float_layers_prefers_the_pass_own_record_of_its_choice():
    # what passes/mixed_precision.py writes now: the chosen layers under kept_by_choice
    cand = _with_pass({**MIXED_PASS.details, "kept_by_choice": ["fc", "conv0"]})
    assert ledger.kept_float_layers(cand) == ["fc", "conv0"]
