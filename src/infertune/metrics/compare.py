"""Paired comparison of two models' top-1 on the same samples.

A drop is a difference between two measured accuracies on the *same* samples, so the
comparison is paired: only the discordant samples (one model right, the other wrong)
carry information. Two views of it are reported together:

* ``delta`` = candidate − baseline top-1 with Tango's score interval for a difference of
  paired proportions (`metrics.budget`, where the choice is explained: it keeps a width
  when there are no discordant pairs, which the percentile bootstrap used before did not).
* McNemar's exact p-value on the discordant counts: is there any difference at all?

Whether a drop is within an accuracy budget is decided in one place only:
`metrics.budget.BudgetRule`, in points.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .budget import paired_difference_interval
from .classification import check_logits_labels
from .intervals import cluster_count, design_effect, mcnemar_exact


def paired_comparison(baseline_correct: np.ndarray, candidate_correct: np.ndarray, *,
                      confidence: float = 0.95,
                      groups: np.ndarray | None = None) -> dict[str, Any]:
    """Compares two per-sample correctness vectors of the same samples, in the same order.

    Args:
        baseline_correct: bool (N,): the baseline model was right on sample i.
        candidate_correct: bool (N,): the candidate was right on sample i.
        confidence: level of `delta_ci`.
        groups: the cluster of each sample, or None when they are independent; clustered
            samples divide the counts by the Rao–Scott design effect (metrics.budget).

    Returns:
        `baseline`, `candidate` (top-1 fractions), `delta` (candidate − baseline),
        `delta_ci` [lo, hi] (Tango), `p_value` (McNemar exact, two-sided), `n`, `n01`
        (baseline wrong, candidate right), `n10` (baseline right, candidate wrong),
        `confidence`, `method`.

    Raises:
        ValueError: the vectors differ in length or are empty.
    """
    base = np.asarray(baseline_correct, dtype=bool)
    cand = np.asarray(candidate_correct, dtype=bool)
    if base.shape != cand.shape or base.ndim != 1 or len(base) == 0:
        raise ValueError(f"need two correctness vectors of one length, got {base.shape} and {cand.shape}")
    n = len(base)
    n01, n10 = int((~base & cand).sum()), int((base & ~cand).sum())
    deff = design_effect(cand.astype(np.int8) - base.astype(np.int8), groups)
    # The interval of candidate − baseline is the drop's interval, negated.
    lo, hi = paired_difference_interval(n / deff, n01 / deff, n10 / deff, confidence)
    clustered = "" if groups is None else \
        f"; Rao–Scott adjusted for {cluster_count(groups, n)} clusters (design effect {deff:.3g})"
    return {
        "baseline": float(base.mean()), "candidate": float(cand.mean()),
        "delta": (n01 - n10) / n, "delta_ci": [lo, hi],
        "p_value": mcnemar_exact(round(n01 / deff), round(n10 / deff)),
        "n": n, "n01": n01, "n10": n10, "confidence": confidence, "design_effect": deff,
        "method": f"paired difference, Tango score {confidence:.0%} interval; McNemar exact"
                  + clustered,
    }


def compare_top1(baseline_logits: np.ndarray, candidate_logits: np.ndarray, labels: np.ndarray,
                 **options: Any) -> dict[str, Any]:
    """`paired_comparison` of two models' top-1 from their N×K logits and the labels."""
    base, labels = check_logits_labels(baseline_logits, labels)
    cand, _ = check_logits_labels(candidate_logits, labels)
    return paired_comparison(base.argmax(axis=1) == labels, cand.argmax(axis=1) == labels,
                             **options)
