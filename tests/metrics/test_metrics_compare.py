"""Paired comparison of two models and the accuracy-budget decision."""
from __future__ import annotations

import json

import numpy as np
import pytest

from infertune.errors import ConfigError
from infertune.metrics import compare_top1, drop_upper_bound, paired_comparison, within_budget


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
    assert "McNemar" in c["method"] and "bootstrap" in c["method"]
    json.dumps(c, allow_nan=False)
    assert paired_comparison(base, cand) == c  # seeded


def test_paired_bootstrap_coverage():
    # 200 simulated experiments, n=300, P(only candidate right)=0.04, P(only baseline
    # right)=0.07: true delta −0.03. A 95% interval should cover it in ≈95%; the binomial
    # SD over 200 experiments is ≈1.5 points, so 90–99% allows for ~3 SD below plus the
    # percentile bootstrap's known slight under-coverage at this n (seeded: deterministic).
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(200):
        cells = rng.choice(4, size=300, p=[0.04, 0.07, 0.70, 0.19])
        base, cand = np.isin(cells, [1, 2]), np.isin(cells, [0, 2])
        lo, hi = paired_comparison(base, cand, n_boot=1000, seed=int(rng.integers(1 << 30)))["delta_ci"]
        covered += lo <= -0.03 <= hi
    assert 0.90 <= covered / 200 <= 0.99


def test_within_budget_decisions():
    same = paired_comparison(*_pairs(200, 0, 0, 150))
    assert same["delta_ci"] == [0.0, 0.0] and within_budget(same, 0.0)
    worse = paired_comparison(*_pairs(200, 0, 10, 150))  # drop 5 points
    assert not within_budget(worse, 0.05)  # the upper bound is above the point estimate
    assert within_budget(worse, 0.10)
    assert drop_upper_bound(worse) == pytest.approx(-worse["delta_ci"][0])
    better = paired_comparison(*_pairs(200, 10, 0, 150))
    assert within_budget(better, 0.0)


def test_within_budget_other_confidence_recomputes():
    c = paired_comparison(*_pairs(500, 5, 15, 400))
    assert drop_upper_bound(c, 0.80) < drop_upper_bound(c, 0.95) < drop_upper_bound(c, 0.99)
    bound80 = drop_upper_bound(c, 0.80)
    assert within_budget(c, bound80, confidence=0.80)
    assert not within_budget(c, bound80 - 1e-6, confidence=0.80)


def test_within_budget_rejects_percent_units():
    c = paired_comparison(*_pairs(10, 1, 1, 5))
    with pytest.raises(ConfigError, match="0.01 = one point"):
        within_budget(c, 1.5)
    with pytest.raises(ConfigError):
        within_budget(c, -0.01)


def test_compare_top1_from_logits():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, 100)
    base = rng.normal(size=(100, 5)) + 3 * np.eye(5)[labels]
    cand = base + rng.normal(scale=1.0, size=base.shape)
    c = compare_top1(base, cand, labels, seed=4)
    expected = paired_comparison(base.argmax(1) == labels, cand.argmax(1) == labels, seed=4)
    assert c == expected
    with pytest.raises(ValueError):
        paired_comparison(np.ones(3, bool), np.ones(4, bool))
