"""explain(): the causes infertune can detect when a step does not speed things up."""
from __future__ import annotations

from infertune.report import ledger
from infertune.report import fields as f

from .fixtures import make_report


def _cand(report, cid):
    return f.by_id(report)[cid]


def _text(reasons):
    return " | ".join(reasons)


def test_faster_candidates_and_the_baseline_need_no_explanation():
    report = make_report()
    for cid in ("base", "fused_ort", "int8_ort", "mixed_ort", "trt"):
        assert ledger.explain(_cand(report, cid), report) == [], cid


def test_dynamic_int8_is_named():
    report = make_report()
    reasons = ledger.explain(_cand(report, "dyn_ort"), report)
    assert "dynamic INT8" in _text(reasons)
    assert "VNNI" not in _text(reasons)           # the made-up CPU has avx512_vnni


def test_int8_without_vnni_or_amx():
    report = make_report()
    report["machine"]["cpu"]["isa"]["avx512_vnni"] = False
    _cand(report, "int8_ort")["latency_ms"]["p50"] = 49.0      # 50/49 = 1.02: no gain
    assert "no VNNI/AMX" in _text(ledger.explain(_cand(report, "int8_ort"), report))
    report["machine"]["cpu"]["isa"]["amx_int8"] = True
    assert "VNNI" not in _text(ledger.explain(_cand(report, "int8_ort"), report))
    del report["machine"]["cpu"]["isa"]
    assert "not recorded" in _text(ledger.explain(_cand(report, "int8_ort"), report))


def test_magnitude_pruning_and_noise():
    report = make_report()
    text = _text(ledger.explain(_cand(report, "pruned_ort"), report))
    assert "dense kernels" in text
    assert "within the measurement spread" in text     # +1 % with cv 3 % on both sides


def test_channels_last_layout():
    report = make_report()
    assert "NCHW again" in _text(ledger.explain(_cand(report, "cl_ort"), report))
    _cand(report, "cl_ort")["runtime"] = "torch"
    # on torch its parent is on onnxruntime still; the message is the torch one
    assert "converts the input to NHWC" in _text(ledger.explain(_cand(report, "cl_ort"),
                                                                report))


def test_macs_are_not_latency_compute_or_memory_bound():
    report = make_report()
    combined = _cand(report, "combined_ort")
    combined["latency_ms"]["p50"] = 19.5      # parent int8_ort 20 ms: ratio 1.026
    combined["latency_ms"]["cv"] = 0.001      # not noise
    text = _text(ledger.explain(combined, report))
    # 1.0 → 0.6 GMAC = 40 % fewer; intensity 1.2 GOP / 10 MB = 120 op/B > ridge 800/20 = 40
    assert "MACs fell by 40 %" in text and "thinner or factorised" in text
    report["machine_limits"]["mem_gbs"] = 1.0     # ridge 800 op/B: now memory-bound
    assert "memory-bound" in _text(ledger.explain(combined, report))


def test_tiny_models_are_overhead_dominated():
    report = make_report()
    pruned = _cand(report, "pruned_ort")
    pruned["macs"] = 10e6
    assert "too small to gain" in _text(ledger.explain(pruned, report))


def test_no_detectable_cause_says_so():
    report = make_report()
    cand = _cand(report, "pruned_ort")
    cand["recipe"] = [{"pass": "fold_bn", "options": {}}]
    cand["latency_ms"]["p50"] = 50.5            # parent 50 ms: 0.99×, not noise below
    cand["latency_ms"]["cv"] = _cand(report, "fused_ort")["latency_ms"]["cv"] = 0.001
    assert ledger.explain(cand, report) == [
        "no cause infertune can detect; compare the per-layer times"]


def test_slow_rows_and_mixed_ledger():
    report = make_report()
    assert {r["id"] for r in ledger.slow_rows(report)} == {"dyn_ort", "pruned_ort", "cl_ort"}
    rows = ledger.mixed_ledger_rows(report)
    # conv0: 1.5 ms for 0.3 points, fc: 0.5 ms for 0.1 points → 5 ms per point each
    assert [(r["layer"], r["ms_per_point"]) for r in rows] == [("conv0", 5.0), ("fc", 5.0)]
