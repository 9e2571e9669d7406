"""decision.basis_lines: which measurement decided the pick, and whether it beat the
runner-up by more than the round-to-round spread (fixtures.py's made-up rounds)."""
from __future__ import annotations

from infertune.report import decision

from .fixtures import make_report, make_run, with_faster_own_measurement


def _text(report) -> str:
    return " ".join(decision.basis_lines(make_run(report)))


def test_overlapping_rounds_are_within_noise():
    # pick 19.8–20.4 ms, runner-up mixed 20.3–21.0 ms: the ranges overlap
    text = _text(make_report())
    assert text.startswith("Decided by the side-by-side rounds")
    assert "the baseline and the 2 fastest candidates" in text
    assert "Runner-up: fold_bn + mixed_precision → onnxruntime, median p50 20.6 ms" in text
    assert "within the measurement noise" in text


def test_separate_rounds_say_faster_in_every_round():
    report = make_report()
    report["final_comparison"]["rows"][2]["p50_ms_by_round"] = [20.6, 20.9, 21.5]
    assert "faster in every round" in _text(report)


def test_a_contender_faster_in_its_own_measurement_is_named():
    text = _text(with_faster_own_measurement(make_report()))
    assert ("In their own full measurements fold_bn + int8_static(method=minmax) → "
            "onnxruntime was faster (19 ms vs 20 ms); the rounds, which time them "
            "alternately, decide.") in text


def test_one_round_has_no_spread():
    report = make_report()
    report["final_comparison"]["rounds"] = 1
    for row in report["final_comparison"]["rows"]:
        row["p50_ms_by_round"] = [row["p50_ms"]]
    assert "One round only" in _text(report)


def test_other_objectives_and_no_rounds_use_the_full_measurements():
    report = make_report()
    report["budget"]["objective"] = "size"
    assert _text(report).startswith("Decided by each candidate's own full measurement: "
                                     "the smallest artifact")
    report = make_report()
    report["final_comparison"] = None
    assert _text(report) == ("Decided by each candidate's own full measurement: the lowest "
                             "p50 among the fully evaluated candidates within budget.")
    report["pick"] = None
    assert _text(report) == ""


def test_a_speed_tie_says_what_broke_it():
    report = make_report()
    rows = report["final_comparison"]["rows"]
    pick, other = rows[1]["id"], rows[2]["id"]
    report["pick_basis"] = {"rule": "r", "fastest": other, "tied": [pick, other]}
    text = _text(report)
    assert "within the measurement noise, the data cannot rank them by speed" in text
    assert "Among them the pick is the smaller drop, then the smaller artifact" in text
    assert "not a demonstrably slower model" in text
    assert "Runner-up" not in text
