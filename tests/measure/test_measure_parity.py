"""Output parity (measure/parity.py) on fixed arrays, and in the measuring child: a runtime
whose outputs are wrong is a failed result carrying the numbers, not a crash."""
from __future__ import annotations

import numpy as np
import pytest

from infertune.measure import measure
from infertune.measure.parity import check, read_reference, write_reference
from infertune.measure.testing_runtimes import factory


def test_check_within_and_beyond_tolerance():
    ref = [[np.array([[1.0, -2.0, 4.0]])]]
    ok = check(ref, [[np.array([[1.0, -2.0, 4.001]])]], rel=1e-3, why="fp32")
    # tolerance = 1e-3 x max|ref| (4) = 4e-3 >= the 1e-3 difference
    assert ok["passed"] and ok["max_abs_diff"] == pytest.approx(1e-3)
    assert ok["tolerance"] == pytest.approx(4e-3) and ok["why"] == "fp32"
    bad = check(ref, [[np.array([[1.0, -2.0, 4.01]])]], rel=1e-3)
    assert not bad["passed"] and "max |diff| 0.01 (tolerance 0.004)" in bad["message"]
    flipped = check(ref, [[-ref[0][0]]], rel=1e-3)
    assert not flipped["passed"] and flipped["cosine"] == pytest.approx(-1.0)


def test_small_outputs_are_held_to_a_relative_bound():
    # Softmax-sized outputs: an absolute 1e-3 would let this 100% error pass.
    ref = [[np.full((1, 4), 1e-3)]]
    bad = check(ref, [[np.full((1, 4), 2e-3)]], rel=1e-3)
    assert not bad["passed"] and bad["tolerance"] == pytest.approx(1e-6)
    assert check(ref, [[np.full((1, 4), 1e-3 + 1e-9)]], rel=1e-3)["passed"]


def test_check_shapes_and_nan():
    ref = [[np.zeros((1, 3))]]
    assert "shape [1, 4]" in check(ref, [[np.zeros((1, 4))]], rel=1e-3)["message"]
    assert "2 outputs" in check(ref, [[np.zeros((1, 3)), np.zeros(1)]], rel=1e-3)["message"]
    nan = check(ref, [[np.array([[0.0, np.nan, 0.0]])]], rel=1e-3)
    assert not nan["passed"] and "NaN" in nan["message"] and nan["max_abs_diff"] is None


def test_reference_file_round_trip(tmp_path):
    xs = [np.ones((1, 3, 2, 2), np.float32), np.zeros((2, 3, 2, 2), np.float32)]
    ys = [[np.ones((1, 5))], [np.zeros((2, 5)), np.ones(2)]]
    write_reference(tmp_path / "p.npz", xs, ys)
    got_x, got_y = read_reference(tmp_path / "p.npz")
    assert [x.shape for x in got_x] == [(1, 3, 2, 2), (2, 3, 2, 2)]
    assert [[y.shape for y in outs] for outs in got_y] == [[(1, 5)], [(2, 5), (2,)]]


def test_wrong_outputs_in_the_child_are_a_failed_result_with_numbers(tmp_path):
    # The fake "sleep" runtime returns its input: a reference of 2x makes it wrong by |x|.
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32)
    write_reference(tmp_path / "p.npz", [x], [[2 * x]])
    spec = {"path": str(tmp_path / "p.npz"), "rel_tolerance": 1e-3, "why": "test"}
    res = measure(factory("sleep", ms=0), input_shape=(3, 4, 4), parity=spec, timeout_s=60,
                  with_fingerprint=False, energy=False, overhead=False)
    assert res["status"] == "failed" and "phase 'parity'" in res["reason"]
    assert res["parity"]["max_abs_diff"] == pytest.approx(float(np.abs(x).max()), rel=1e-6)
    assert res["latency_ms"] is None  # not timed after a failed check
    write_reference(tmp_path / "p.npz", [x], [[x]])
    res = measure(factory("sleep", ms=0), input_shape=(3, 4, 4), parity=spec, speed=False,
                  timeout_s=60, with_fingerprint=False)
    assert res["status"] == "ok" and res["parity"]["passed"] and res["latency_ms"] is None
