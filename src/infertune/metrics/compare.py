"""Paired comparison of two models' top-1 on the same samples, and the accuracy budget test.

A drop is a difference between two measured accuracies on the *same* samples, so the
comparison is paired: only the discordant samples (one model right, the other wrong)
carry information. Two views of it are reported together:

* ``delta`` = candidate − baseline top-1 with a percentile-bootstrap interval over samples
  (seeded). Resampling samples of a paired 0/1 outcome is a multinomial draw over its four
  cells (both right, both wrong, only candidate right, only baseline right), so the whole
  bootstrap costs O(resamples), whatever n is.
* McNemar's exact p-value on the discordant counts: is there any difference at all?

Caveat: with very few discordant pairs the percentile bootstrap is narrow (0 discordant
pairs give [0, 0]: the models were right on exactly the same samples); the McNemar counts
are returned so a reader can see how much evidence there is.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .classification import check_logits_labels
from .intervals import bootstrap_interval, mcnemar_exact

DEFAULT_RESAMPLES = 2000


def paired_comparison(baseline_correct: np.ndarray, candidate_correct: np.ndarray, *,
                      confidence: float = 0.95, n_boot: int = DEFAULT_RESAMPLES,
                      seed: int = 0) -> dict[str, Any]:
    """Compares two per-sample correctness vectors of the same samples, in the same order.

    Args:
        baseline_correct: bool (N,): the baseline model was right on sample i.
        candidate_correct: bool (N,): the candidate was right on sample i.
        confidence: level of `delta_ci`.
        n_boot: bootstrap resamples.
        seed: bootstrap seed (same inputs → same interval).

    Returns:
        `baseline`, `candidate` (top-1 fractions), `delta` (candidate − baseline),
        `delta_ci` [lo, hi], `p_value` (McNemar exact, two-sided), `n`, `n01` (baseline
        wrong, candidate right), `n10` (baseline right, candidate wrong), `confidence`,
        `resamples`, `seed`, `method`.

    Raises:
        ValueError: the vectors differ in length or are empty.
    """
    base = np.asarray(baseline_correct, dtype=bool)
    cand = np.asarray(candidate_correct, dtype=bool)
    if base.shape != cand.shape or base.ndim != 1 or len(base) == 0:
        raise ValueError(f"need two correctness vectors of one length, got {base.shape} and {cand.shape}")
    n = len(base)
    n01, n10 = int((~base & cand).sum()), int((base & ~cand).sum())
    return {
        "baseline": float(base.mean()), "candidate": float(cand.mean()),
        "delta": (n01 - n10) / n,
        "delta_ci": list(delta_interval(n, n01, n10, confidence=confidence, n_boot=n_boot, seed=seed)),
        "p_value": mcnemar_exact(n01, n10),
        "n": n, "n01": n01, "n10": n10,
        "confidence": confidence, "resamples": n_boot, "seed": seed,
        "method": f"paired percentile bootstrap ({n_boot} resamples, seed {seed}); McNemar exact",
    }


def compare_top1(baseline_logits: np.ndarray, candidate_logits: np.ndarray, labels: np.ndarray,
                 **options: Any) -> dict[str, Any]:
    """`paired_comparison` of two models' top-1 from their N×K logits and the labels."""
    base, labels = check_logits_labels(baseline_logits, labels)
    cand, _ = check_logits_labels(candidate_logits, labels)
    return paired_comparison(base.argmax(axis=1) == labels, cand.argmax(axis=1) == labels,
                             **options)


def delta_interval(n: int, n01: int, n10: int, *, confidence: float = 0.95,
                   n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of candidate − baseline top-1 from the paired counts alone.

    The cells are (n01, n10, the n − n01 − n10 concordant samples); delta of a resample is
    (its n01 − its n10) / n.
    """
    if n < 1 or n01 < 0 or n10 < 0 or n01 + n10 > n:
        raise ValueError(f"bad paired counts n={n}, n01={n01}, n10={n10}")
    counts = np.array([n01, n10, n - n01 - n10])
    return bootstrap_interval(counts, lambda c: (c[:, 0] - c[:, 1]) / n,
                              n_boot=n_boot, seed=seed, confidence=confidence)


def drop_upper_bound(comparison: dict[str, Any], confidence: float = 0.95) -> float:
    """Upper bound of the drop (baseline − candidate) at `confidence`, in fraction units.

    It is minus the lower end of the two-sided `confidence` interval of delta, so the
    one-sided error rate is (1 − confidence)/2. Recomputed from the counts (same seed and
    resamples) when `confidence` differs from the comparison's own.
    """
    if confidence == comparison.get("confidence"):
        lo = comparison["delta_ci"][0]
    else:
        lo, _ = delta_interval(comparison["n"], comparison["n01"], comparison["n10"],
                               confidence=confidence,
                               n_boot=comparison.get("resamples", DEFAULT_RESAMPLES),
                               seed=comparison.get("seed", 0))
    return -float(lo)


def within_budget(comparison: dict[str, Any], max_drop: float, confidence: float = 0.95) -> bool:
    """Whether a candidate's top-1 drop is within the budget, with `confidence`.

    True when the upper bound of the drop (baseline − candidate, from the paired
    bootstrap interval, see `drop_upper_bound`) is ≤ `max_drop`. So a candidate passes
    only if the data rule out, at that confidence, a drop larger than the budget; a small
    sample widens the interval and makes the test stricter, never looser. A candidate more
    accurate than the baseline has a negative drop and always passes.

    Args:
        comparison: a result of `paired_comparison` / `compare_top1`.
        max_drop: allowed drop in absolute fraction units: 0.01 = one percentage point of
            top-1 (not a relative 1%, and not 1).
        confidence: two-sided level of the interval whose bound is used.

    Raises:
        ConfigError: max_drop outside 0..1.
    """
    if not 0.0 <= max_drop <= 1.0:
        raise ConfigError(f"max_drop is a fraction of top-1 between 0 and 1 "
                          f"(0.01 = one point), not {max_drop}")
    # A tiny tolerance so a bound of exactly max_drop passes despite float rounding.
    return drop_upper_bound(comparison, confidence) <= max_drop + 1e-12
