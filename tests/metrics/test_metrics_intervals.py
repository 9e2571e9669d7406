"""Wilson interval, bootstrap, and McNemar's exact test."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from infertune.metrics import bootstrap_interval, mcnemar_exact, wilson_interval


def _wilson_by_quadratic(k, n, z=1.959963984540054):
    """Wilson bounds as the roots p of (k/n − p)² = z²·p(1 − p)/n."""
    phat = k / n
    a, b, c = 1 + z * z / n, -(2 * phat + z * z / n), phat * phat
    return sorted(np.roots([a, b, c]).real)


@pytest.mark.parametrize("k, n", [(81, 100), (7, 10), (1, 50), (499, 500)])
def test_wilson_matches_the_quadratic(k, n):
    np.testing.assert_allclose(wilson_interval(k, n), _wilson_by_quadratic(k, n), atol=1e-12)


def test_wilson_edges():
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(5, 10, 0.99)[0] < wilson_interval(5, 10, 0.95)[0]
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_wilson_coverage_on_simulated_experiments():
    # 400 experiments of n=200 at p=0.9. Wilson's actual coverage there is ≈95%; with 400
    # experiments the observed rate has a binomial SD of ≈1.1 points, so 92–98% is ±~2.7 SD
    # (seeded, hence deterministic; it would fail for the normal-approximation interval
    # only by luck, but does catch a wrong z or formula).
    rng = np.random.default_rng(2024)
    successes = rng.binomial(200, 0.9, size=400)
    covered = sum(lo <= 0.9 <= hi for lo, hi in (wilson_interval(int(k), 200) for k in successes))
    assert 0.92 <= covered / 400 <= 0.98


def test_mcnemar_against_a_hand_binomial_sum():
    # n01=2, n10=9: m=11, p = 2·(C(11,0)+C(11,1)+C(11,2))/2¹¹ = 2·67/2048.
    assert mcnemar_exact(2, 9) == pytest.approx(134 / 2048, rel=1e-12)
    assert mcnemar_exact(9, 2) == mcnemar_exact(2, 9)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(4, 4) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32, rel=1e-12)


def test_mcnemar_large_counts_match_exact_fractions():
    n01, n10 = 1400, 1600
    m = n01 + n10
    exact = 2 * Fraction(sum(math.comb(m, i) for i in range(n01 + 1)), 2 ** m)
    assert mcnemar_exact(n01, n10) == pytest.approx(float(exact), rel=1e-9)


def test_bootstrap_interval_is_seeded_and_sensible():
    counts = np.array([30, 70])  # 30% successes among 100
    stat = lambda c: c[:, 0] / 100  # noqa: E731
    a = bootstrap_interval(counts, stat, n_boot=2000, seed=1)
    assert a == bootstrap_interval(counts, stat, n_boot=2000, seed=1)
    fine = np.array([3001, 7006])  # finer steps, so another seed visibly moves the bounds
    fine_stat = lambda c: c[:, 0] / 10007  # noqa: E731
    assert (bootstrap_interval(fine, fine_stat, seed=1)
            != bootstrap_interval(fine, fine_stat, seed=2))
    # Close to the normal interval 0.3 ± 1.96·sqrt(0.21/100) = [0.210, 0.390].
    assert a[0] == pytest.approx(0.21, abs=0.02) and a[1] == pytest.approx(0.39, abs=0.02)
