"""stats.py: percentiles, spread, CV and the noisy flag on fixed samples (hand-computed)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from infertune.measure import stats

ONE_TO_TEN = [float(i) for i in range(1, 11)]


def test_percentiles_by_linear_interpolation_hand_computed():
    # n=10: rank h = 9*q/100; p50 -> h=4.5 -> 5 + .5*(6-5); p90 -> h=8.1 -> 9 + .1*(10-9).
    assert stats.percentile(ONE_TO_TEN, 50) == pytest.approx(5.5)
    assert stats.percentile(ONE_TO_TEN, 90) == pytest.approx(9.1)
    assert stats.percentile(ONE_TO_TEN, 99) == pytest.approx(9.91)
    assert stats.percentile(ONE_TO_TEN, 0) == 1.0
    assert stats.percentile(ONE_TO_TEN, 100) == 10.0
    # Unsorted input, odd count: the middle value.
    assert stats.percentile([7.0, 1.0, 3.0], 50) == 3.0
    assert stats.percentile([4.0], 99) == 4.0


def test_percentiles_match_numpy_default():
    rng = np.random.default_rng(0)
    xs = list(rng.lognormal(size=137))
    for q in (1, 25, 50, 90, 99):
        assert stats.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)), rel=1e-12)


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_mean_std_cv_hand_computed():
    # Sum of squared deviations from 5.5 over 1..10 is 82.5; sample std uses n-1 = 9.
    assert stats.mean(ONE_TO_TEN) == 5.5
    assert stats.std(ONE_TO_TEN) == pytest.approx(math.sqrt(82.5 / 9))
    assert stats.cv(ONE_TO_TEN) == pytest.approx(math.sqrt(82.5 / 9) / 5.5)
    assert stats.std([3.0]) == 0.0
    assert stats.cv([0.0, 0.0]) == 0.0


def test_latency_summary_converts_ns_to_ms_and_keeps_samples():
    ns = [1_000_000 * i for i in range(1, 11)]  # 1..10 ms
    s = stats.latency_summary(ns)
    assert s["p50"] == pytest.approx(5.5) and s["p90"] == pytest.approx(9.1)
    assert s["mean"] == pytest.approx(5.5) and s["n"] == 10
    assert s["samples"] == ONE_TO_TEN
    assert "samples" not in stats.latency_summary(ns, keep_samples=False)


def test_noisy_flag_threshold():
    quiet = stats.latency_summary([10_000_000, 10_100_000, 9_900_000, 10_050_000])
    cv, noisy, warning = stats.noise_verdict(quiet)
    assert cv < 0.01 and not noisy and warning is None
    loud = stats.latency_summary([10_000_000, 15_000_000, 8_000_000, 12_000_000])
    cv, noisy, warning = stats.noise_verdict(loud)
    assert cv > stats.NOISY_CV and noisy and "noisy" in warning
    assert stats.is_noisy(0.11) and not stats.is_noisy(0.10)


def test_ratio_summary_median_and_spread():
    s = stats.ratio_summary([2.0, 3.0, 2.0, 1.0])
    assert s == {"median": 2.0, "min": 1.0, "max": 3.0, "q1": 1.75, "q3": 2.25, "n": 4}
    assert stats.ratio_summary([]) is None


def test_throughput_is_total_images_over_total_time():
    # 4 calls of batch 8 taking 10+10+10+30 ms = 60 ms: 32 images / 0.06 s.
    ns = [10_000_000, 10_000_000, 10_000_000, 30_000_000]
    assert stats.throughput_ips(ns, 8) == pytest.approx(32 / 0.06)
