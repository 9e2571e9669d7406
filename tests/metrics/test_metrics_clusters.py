"""Clustered samples: the Rao–Scott design effect and the drop intervals adjusted by it."""
from __future__ import annotations

import numpy as np
import pytest

from infertune.metrics import compare_top1, fidelity
from infertune.metrics.budget import disagreement_drop, top1_drop
from infertune.metrics.classification import classification_report
from infertune.metrics.intervals import cluster_count, design_effect
from infertune.search.select import drop_agreement, drop_top1


def _logits(pred: np.ndarray, classes: int = 10) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[pred]


def _models(n: int, seed: int = 0):
    """Labels, a baseline that errs on ~8% and a candidate that errs on ~12% of n samples."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    base = np.where(rng.random(n) < 0.08, (labels + 1) % 10, labels)
    cand = np.where(rng.random(n) < 0.12, (labels + 2) % 10, labels)
    return labels, _logits(base), _logits(cand)


def test_no_groups_and_singleton_groups_change_nothing():
    labels, base, cand = _models(500)
    plain = drop_top1(base, cand, labels)
    single = drop_top1(base, cand, labels, groups=np.arange(500))
    assert (single.low, single.high, single.design_effect) == (plain.low, plain.high, 1.0)
    assert plain.clusters is None and single.clusters == 500
    assert design_effect(np.ones(10), np.repeat(np.arange(5), 2)) == 1.0  # no variation
    assert design_effect(np.arange(6.0), np.zeros(6)) == 1.0  # one cluster


@pytest.mark.parametrize("k", [2, 4])
def test_repeating_every_sample_k_times_does_not_narrow_the_interval(k):
    # Each sample repeated k times carries no new information. Computed by hand from the
    # formula (module metrics.intervals): the cluster totals are k·(v_g − v̄), so
    # V_cluster = G/(G−1)·Σ(v_g − v̄)²/G², and V_independent = k·Σ(v_g − v̄)²/((kG−1)·kG);
    # their ratio is (kG − 1)/(G − 1). Divided by it, the counts give an interval within
    # 0.05 points of the unrepeated one (n/D = kG(G−1)/(kG−1) ≈ G), never narrower.
    labels, base, cand = _models(400, seed=k)
    once = drop_top1(base, cand, labels)
    rep = drop_top1(np.repeat(base, k, 0), np.repeat(cand, k, 0), np.repeat(labels, k),
                    groups=np.repeat(np.arange(400), k))
    assert rep.design_effect == pytest.approx((k * 400 - 1) / 399, rel=1e-12)
    assert rep.value == pytest.approx(once.value)
    assert rep.low <= once.low + 1e-9 and rep.high >= once.high - 1e-9
    assert rep.high - once.high < 0.05 and once.low - rep.low < 0.05
    naive = drop_top1(np.repeat(base, k, 0), np.repeat(cand, k, 0), np.repeat(labels, k))
    assert naive.high < once.high - 0.2  # what treating the copies as new samples claims
    assert "Rao–Scott" in rep.method and "400 clusters" in rep.method


def test_agreement_is_adjusted_the_same_way():
    labels, base, cand = _models(300, seed=3)
    once = drop_agreement(base, cand)
    rep = drop_agreement(np.repeat(base, 3, 0), np.repeat(cand, 3, 0),
                         groups=np.repeat(np.arange(300), 3))
    assert rep.design_effect == pytest.approx(899 / 299, rel=1e-12)
    assert rep.high >= once.high - 1e-9 and rep.high - once.high < 0.05


def test_a_design_effect_below_one_is_floored():
    # Two samples per cluster with opposite values: the cluster totals are 0, the
    # cluster-robust variance 0, D = 0 before the floor.
    values = np.tile([1.0, -1.0], 50)
    assert design_effect(values, np.repeat(np.arange(50), 2)) == 1.0
    with pytest.raises(ValueError, match="design effect"):
        top1_drop(100, 5, 1, deff=0.5)
    with pytest.raises(ValueError, match="group labels"):
        design_effect(np.zeros(4), np.zeros(3))
    assert cluster_count(None, 7) == 7 and cluster_count(np.array([3, 3, 9]), 3) == 2


def _clustered_experiment(rng, clusters: int, k: int):
    """Baseline/candidate correctness of `clusters`×`k` samples. A tenth of the clusters are
    hard: there the candidate alone errs on each sample with probability ½; elsewhere each
    sample is discordant either way with probability 0.01. True drop: p10 − p01 =
    (0.1·0.5 + 0.9·0.01) − 0.9·0.01 = 0.05."""
    hard = np.repeat(rng.random(clusters) < 0.1, k)
    u = rng.random(clusters * k)
    base = np.ones(clusters * k, bool)
    cand = np.ones(clusters * k, bool)
    cand[hard & (u < 0.5)] = False
    easy = ~hard
    cand[easy & (u < 0.01)] = False
    base[easy & (u >= 0.01) & (u < 0.02)] = False
    return base, cand, np.repeat(np.arange(clusters), k)


def test_the_adjusted_interval_covers_the_true_drop_on_clustered_data():
    # 400 seeded experiments of 150 clusters × 4 samples with strongly correlated
    # discordance (design effect ≈ 2: ρ = 0.0225/0.0655 ≈ 0.34, 1 + 3ρ ≈ 2.0). A 95%
    # interval should cover 0.05 in ≈95% of them (binomial SD over 400 ≈ 1.1 points,
    # 91–98.5% is about −3.6/+3.2 SD); the unadjusted one is too narrow by ≈ √2, ≈ 83%.
    rng = np.random.default_rng(11)
    adjusted = naive = 0
    for _ in range(400):
        base, cand, groups = _clustered_experiment(rng, 150, 4)
        n10, n01 = int((base & ~cand).sum()), int((~base & cand).sum())
        deff = design_effect(base.astype(np.int8) - cand.astype(np.int8), groups)
        d = top1_drop(len(base), n10, n01, deff=deff, clusters=150)
        plain = top1_drop(len(base), n10, n01)
        adjusted += d.low <= 5.0 <= d.high
        naive += plain.low <= 5.0 <= plain.high
    assert 0.91 <= adjusted / 400 <= 0.985
    assert naive / 400 < 0.90


def test_accuracy_intervals_widen_with_the_clusters():
    labels, base, _ = _models(300, seed=5)
    once = classification_report(base, labels, n_boot=300)
    rep = classification_report(np.repeat(base, 4, 0), np.repeat(labels, 4), n_boot=300,
                                groups=np.repeat(np.arange(300), 4))
    naive = classification_report(np.repeat(base, 4, 0), np.repeat(labels, 4), n_boot=300)
    assert rep["design_effect"] == pytest.approx(1199 / 299, rel=1e-12)
    assert rep["top1"] == pytest.approx(once["top1"])
    # Wilson on the deflated counts: the unrepeated interval to within 0.002 (fractions).
    np.testing.assert_allclose(rep["top1_ci"], once["top1_ci"], atol=0.002)
    assert naive["top1_ci"][1] - naive["top1_ci"][0] < 0.6 * (once["top1_ci"][1] - once["top1_ci"][0])
    # The P/R/F1 bootstrap resamples n/D: its width is near the unrepeated one's (±25%,
    # bootstrap noise at 300 resamples), far from the naive half width.
    width = lambda r: r["f1_macro_ci"][1] - r["f1_macro_ci"][0]  # noqa: E731
    assert 0.75 * width(once) <= width(rep) <= 1.25 * width(once)
    assert width(naive) < 0.65 * width(once)


def test_disagreement_drop_with_a_design_effect_is_wilson_on_deflated_counts():
    from infertune.metrics.intervals import wilson_interval

    d = disagreement_drop(400, 20, deff=2.0, clusters=100)
    lo, hi = wilson_interval(10, 200)
    assert (d.value, d.low, d.high) == pytest.approx((5.0, 100 * lo, 100 * hi))


def test_fidelity_and_paired_comparison_take_the_clusters_too():
    labels, base, cand = _models(250, seed=8)
    k = 3
    rep = lambda a: np.repeat(a, k, 0)  # noqa: E731
    groups = np.repeat(np.arange(250), k)
    once, clustered = fidelity(base, cand), fidelity(rep(base), rep(cand), groups=groups)
    np.testing.assert_allclose(clustered["top1_agreement_ci"], once["top1_agreement_ci"],
                               atol=0.002)
    c_once = compare_top1(base, cand, labels)
    c_rep = compare_top1(rep(base), rep(cand), rep(labels), groups=groups)
    assert c_rep["design_effect"] == pytest.approx(749 / 249, rel=1e-12)
    np.testing.assert_allclose(c_rep["delta_ci"], c_once["delta_ci"], atol=0.0005)
    assert "250 clusters" in c_rep["method"] and c_once["design_effect"] == 1.0


def test_evaluate_reports_clustered_data_with_adjusted_intervals():
    from infertune.commands.evaluate import assemble
    from infertune.data.dataset import Dataset
    from infertune.data.preprocess import resolve_preprocess
    from infertune.types import InputSpec, ModelHandle

    labels, base, cand = _models(200, seed=9)
    groups = np.repeat(np.arange(200), 2)
    pre = resolve_preprocess("none")
    ds = Dataset(np.zeros((400, 1, 2, 2), np.float32), np.repeat(labels, 2),
                 [str(i) for i in range(10)], "two views of 200 samples", pre, groups=groups)
    handle = ModelHandle(format="onnx", path="m.onnx", input_spec=InputSpec(shape=(1, 1, 2, 2)),
                         name="m", source="m")
    out = assemble(handle, handle, ds, pre, "test", np.repeat(cand, 2, 0), np.repeat(base, 2, 0))
    alone = compare_top1(base, cand, labels)
    assert out["data"]["clusters"] == 200
    assert out["accuracy"]["design_effect"] == pytest.approx(399 / 199, rel=1e-12)
    np.testing.assert_allclose(out["comparison"]["delta_ci"], alone["delta_ci"], atol=0.001)
