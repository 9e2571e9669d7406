"""benchmarks/peers.py: the best peer *within the budget*, judged by optimize's own rule."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers

from infertune.metrics.intervals import wilson_interval


def _row(name: str, rounds: list[float], **quality) -> dict:
    return {"pipeline": name, "p50_ms": sorted(rounds)[len(rounds) // 2],
            "p50_ms_by_round": rounds, **quality}


def test_the_fastest_peer_over_budget_is_passed_over_for_the_fastest_within():
    rows = [_row("torch eager fp32", [10.0, 10.0, 10.0]),
            # fastest, but its paired drop may reach 3 points: over a 1-point budget
            _row("onnxruntime int8", [1.0, 1.0, 1.0], drop_vs_eager={"ci": [-0.5, 3.0]}),
            _row("openvino nncf int8", [2.0, 2.5, 2.0], drop_vs_eager={"ci": [-0.9, 0.8]}),
            _row("infertune pick", [1.6, 2.0, 2.5], drop_vs_eager={"ci": [-1.0, 0.6]})]
    assert peers.versus_best_peer(rows) == "onnxruntime int8"
    assert peers.versus_best_peer_within(rows, 1.0) == "openvino nncf int8"
    pick = rows[-1]
    assert pick["within_budget"] and not rows[1]["within_budget"]
    # per-round ratios 2.0/1.6, 2.5/2.0, 2.0/2.5 → median 1.25
    assert pick["vs_best_peer_within"]["median"] == pytest.approx(1.25)
    assert pick["vs_best_peer_within"]["min"] == pytest.approx(0.8)
    assert pick["vs_best_peer"]["median"] == pytest.approx(1 / 2.0)


def test_agreement_drop_is_the_wilson_upper_end_of_disagreement():
    # 300 views, 297 agree: disagreement 1% with Wilson's upper end above 1 point
    row = _row("openvino nncf int8", [1.0], fidelity={"n": 300, "top1_agreement": 0.99})
    low, high = wilson_interval(3, 300, 0.95)
    assert peers.drop_high(row) == pytest.approx(100 * high)
    assert peers.drop_high(row) > 1.0
    rows = [_row("torch eager fp32", [5.0]), row]
    # the float reference loses nothing by definition: it is the best peer within budget
    assert peers.versus_best_peer_within(rows, 1.0) == "torch eager fp32"
    assert row["within_budget"] is False
    assert peers.drop_high(_row("x", [1.0])) is None          # not scored: not judged
