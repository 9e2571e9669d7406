"""Fidelity to a reference model's outputs. sqnr_db is math.inf for identical outputs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from infertune.metrics import cosine_per_sample, fidelity, sqnr_db


def test_identical_outputs():
    ref = np.random.default_rng(0).normal(size=(50, 10))
    f = fidelity(ref, ref.copy())
    assert f["top1_agreement"] == 1.0 and f["max_abs"] == 0.0 and f["n"] == 50
    assert f["cosine"] == pytest.approx(1.0, abs=1e-12)
    assert f["sqnr_db"] == math.inf
    assert f["top1_agreement_ci"][1] == 1.0


def test_known_noise_level():
    # Signal variance 1, noise variance 0.01: SQNR = 10·log10(1/0.01) = 20 dB. With 200,000
    # values the estimate's error is ~0.01 dB; 0.5 dB is the stated tolerance.
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(2000, 100))
    test = ref + rng.normal(scale=0.1, size=ref.shape)
    f = fidelity(ref, test)
    assert f["sqnr_db"] == pytest.approx(20.0, abs=0.5)
    # Cosine of x and x + e (independent, D=100): ≈ 1/sqrt(1 + 0.01) = 0.99504.
    assert f["cosine"] == pytest.approx(1 / math.sqrt(1.01), abs=1e-3)
    assert 0.5 < f["top1_agreement"] < 1.0  # near-ties among 100 classes flip


def test_agreement_and_max_abs_by_construction():
    ref = np.eye(10)  # arg-max of row i is i
    test = ref.copy()
    test[[1, 4, 7]] = np.roll(test[[1, 4, 7]], 1, axis=1)  # 3 of 10 change their arg-max
    test[0, 3] += 0.7
    f = fidelity(ref, test)
    assert f["top1_agreement"] == pytest.approx(0.7)
    assert f["max_abs"] == pytest.approx(1.0)
    test2 = ref.copy()
    test2[2, 5] -= 0.7
    assert fidelity(ref, test2)["max_abs"] == pytest.approx(0.7)


def test_feature_maps_have_no_agreement():
    ref = np.random.default_rng(2).normal(size=(4, 3, 5, 5))
    f = fidelity(ref, 2 * ref)
    assert f["top1_agreement"] is None and f["cosine"] == pytest.approx(1.0)
    assert f["sqnr_db"] == pytest.approx(0.0, abs=1e-9)  # noise = ref exactly


def test_zero_rows_and_signs():
    ref = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert cosine_per_sample(ref, ref).tolist() == [1.0, 1.0]
    assert cosine_per_sample(ref, np.array([[0.0, 1.0], [-1.0, 0.0]])).tolist() == [0.0, -1.0]
    assert sqnr_db(np.zeros((1, 2)), np.ones((1, 2))) == -math.inf


def test_bad_outputs():
    with pytest.raises(ValueError, match="same shape"):
        fidelity(np.zeros((2, 3)), np.zeros((2, 4)))
    bad = np.zeros((3, 2))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="test outputs are not finite at sample 2"):
        fidelity(np.zeros((3, 2)), bad)
