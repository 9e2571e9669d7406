"""Paired comparison of two models, the drop interval (Tango) and the one budget rule."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from infertune.errors import ConfigError
from infertune.metrics import BudgetRule, compare_top1, paired_comparison
from infertune.metrics.budget import paired_difference_interval, tango_statistic, top1_drop

Z95 = 1.959963984540054


def _pairs(n, n01, n10, n11):
    base = np.array([False] * n01 + [True] * n10 + [True] * n11 + [False] * (n - n01 - n10 - n11))
    cand = np.array([True] * n01 + [False] * n10 + [True] * n11 + [False] * (n - n01 - n10 - n11))
    return base, cand


def test_small_case_counts_delta_and_mcnemar():
    base, cand = _pairs(40, 2, 9, 20)
    c = paired_comparison(base, cand)
    assert (c["n"], c["n01"], c["n10"]) == (40, 2, 9)
    assert c["baseline"] == 29 / 40 and c["candidate"] == 22 / 40
    assert c["delta"] == pytest.approx(-7 / 40)
    assert c["p_value"] == pytest.approx(2 * (1 + 11 + 55) / 2 ** 11, rel=1e-12)
    lo, hi = c["delta_ci"]
    assert lo < c["delta"] < hi < 0.0
    assert "McNemar" in c["method"] and "Tango" in c["method"]
    json.dumps(c, allow_nan=False)


def test_zero_discordant_pairs_keep_a_width():
    """Hand-worked: with b = c = 0 the score equation reduces to n·Δ/(1 − Δ) = z², so the
    upper end is z²/(n + z²): 7.13 points at n = 50, whatever the concordant split."""
    for both_right in (50, 40, 0):
        lo, hi = paired_difference_interval(50, 0, 0)
        assert hi == pytest.approx(Z95 ** 2 / (50 + Z95 ** 2), rel=1e-9)
        assert lo == pytest.approx(-hi, rel=1e-9)
        c = paired_comparison(*_pairs(50, 0, 0, both_right))
        assert c["delta_ci"][0] < 0 < c["delta_ci"][1]
    # 50 samples and no disagreement cannot show a drop under half a point.
    assert BudgetRule(0.5).within(top1_drop(50, 0, 0).high) is False


def test_one_sided_discordance_matches_a_closed_form():
    """Hand-worked for n01 = 0 (C = 0 in Tango's quadratic): q = max(0, −B)/(2n) with
    B = −b + (2n − b)Δ, and T(Δ) = (b − nΔ)/sqrt(n(2q + Δ(1 − Δ))). Solve T = ±z by a
    bisection written here, independently of the module."""
    n, b = 100, 5

    def t(delta):
        q = max(0.0, b - (2 * n - b) * delta) / (2 * n)
        return (b - n * delta) / math.sqrt(n * (2 * q + delta * (1 - delta)))

    def solve(target, lo, hi):
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if t(mid) > target else (lo, mid)
        return (lo + hi) / 2

    lo, hi = paired_difference_interval(n, b, 0)
    assert hi == pytest.approx(solve(-Z95, b / n, 0.999), abs=1e-9)
    assert lo == pytest.approx(solve(Z95, 1e-9, b / n), abs=1e-9)
    # At Δ = 0 the statistic is McNemar's (b − c)/sqrt(b + c).
    assert tango_statistic(n, 7, 3, 0.0) == pytest.approx(4 / math.sqrt(10))


def test_tango_interval_coverage():
    # 400 simulated experiments, n=300, P(only candidate right)=0.04, P(only baseline
    # right)=0.07: true delta −0.03. A 95% score interval should cover it in ≈95%; the
    # binomial SD over 400 experiments is ≈1.1 points, so 92–98% is ~3 SD (seeded).
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(400):
        cells = rng.choice(4, size=300, p=[0.04, 0.07, 0.70, 0.19])
        base, cand = np.isin(cells, [1, 2]), np.isin(cells, [0, 2])
        lo, hi = paired_comparison(base, cand)["delta_ci"]
        covered += lo <= -0.03 <= hi
    assert 0.92 <= covered / 400 <= 0.98


def test_budget_rule_in_points():
    worse = top1_drop(200, 10, 0)            # drop 5 points
    assert worse.value == pytest.approx(5.0) and worse.high > 5.0
    assert not BudgetRule(5.0).within(worse.high)   # the upper end is above the estimate
    assert BudgetRule(10.0).within(worse.high)
    better = top1_drop(200, 0, 10)
    assert BudgetRule(0.0).within(better.high)
    assert BudgetRule.from_option(1.0, "relative", 50.0).points == 0.5
    with pytest.raises(ConfigError):
        BudgetRule.from_option(1.0, "percent", 50.0)
    with pytest.raises(ConfigError):
        BudgetRule(float("nan"))


def test_other_confidence_widens_or_narrows():
    his = [paired_difference_interval(500, 15, 5, conf)[1] for conf in (0.80, 0.95, 0.99)]
    assert his[0] < his[1] < his[2]


def test_compare_top1_from_logits():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, 100)
    base = rng.normal(size=(100, 5)) + 3 * np.eye(5)[labels]
    cand = base + rng.normal(scale=1.0, size=base.shape)
    c = compare_top1(base, cand, labels)
    expected = paired_comparison(base.argmax(1) == labels, cand.argmax(1) == labels)
    assert c == expected
    with pytest.raises(ValueError):
        paired_comparison(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError):
        paired_difference_interval(10, 6, 6)
