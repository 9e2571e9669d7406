"""The accuracy budget: a drop's interval, in points, and the one rule that judges it.

Every drop infertune decides on is paired: the baseline and the candidate are scored on the
same samples. Two cases:

* **Top-1 with labels.** The drop is p_base − p_cand = (n10 − n01)/n, where n10 counts the
  samples only the baseline gets right and n01 those only the candidate gets right. Its
  interval is **Tango's score interval** for a difference of paired proportions (Tango 1998,
  Statistics in Medicine 17:891): the set of differences Δ the score test does not reject,
  with the nuisance parameter at its constrained maximum-likelihood value. Why Tango and not
  the percentile bootstrap used before: with no discordant pairs the bootstrap interval is
  exactly [0, 0] at any n (50 samples and 0 disagreements "proved" a 0-point drop), while
  the score interval keeps a width that shrinks with n (about z²/(n + z²) at 0 discordant
  pairs: 7.1 points at n = 50). It is well calibrated for small and zero cells, where Wald
  and bootstrap intervals are not (Newcombe 1998 compares them); Newcombe's hybrid interval
  would also do, but leans on an estimated correlation that is undefined when a margin is
  empty.
* **Agreement with the original model** (no usable labels). The baseline agrees with itself
  on every sample, so the drop is the disagreement rate d/n, a single proportion: its Wilson
  score interval, valid at d = 0 for the same reason.

* **mAP of a detector** (labels, or fidelity mAP against the original model's detections):
  mAP does not decompose into per-sample successes, so its paired drop's interval is a
  percentile bootstrap over images, both models scored on the same draws
  (tasks/detection/compare.py). Its points are mAP points, judged by the same rule.

**Clustered samples** (several samples of one origin: `--eval-size` beyond the 1,000 digits
of `clutter:val` renders more scenes of each digit): samples of one cluster are not
independent, and an interval that treats them as such claims more than the data shows. The
counts are then divided by the **design effect** D before the interval is computed (Rao &
Scott 1992, "A simple method for the analysis of clustered binary data", Biometrics
48:577): D is the cluster-robust variance of the mean per-sample difference over its
variance under independence (`metrics.intervals.design_effect`). Why Rao–Scott and not
a cluster bootstrap: it keeps Tango's and Wilson's behaviour at zero discordant pairs, and
with one sample per cluster D is exactly 1, so unclustered data is judged exactly as
before. D is floored at 1: an estimate below 1 (negative within-cluster correlation, or
noise) would make clustered samples count for more than independent ones.

The rule (`BudgetRule.within`): a candidate is within budget only when the *upper end* of
its drop's two-sided interval is at most the budget, in points. So each decision errs on
the side of refusing, with one-sided error (1 − confidence)/2, and less data makes the test
stricter, never looser.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .intervals import cluster_count, design_effect, wilson_interval, z_value

_BISECTION_STEPS = 80  # halves [−1, 1] to below 1e-20: far past float precision


def _tango_q(n: int, n10: int, n01: int, delta: float) -> float:
    """Constrained MLE of the probability of an n01 cell when p10 − p01 = delta."""
    a = 2.0 * n
    b = -n10 - n01 + (2.0 * n - n10 + n01) * delta
    c = -n01 * delta * (1.0 - delta)
    disc = max(b * b - 4.0 * a * c, 0.0)
    return max((math.sqrt(disc) - b) / (2.0 * a), 0.0)


def tango_statistic(n: int, n10: int, n01: int, delta: float) -> float:
    """Tango's score statistic for H0: p10 − p01 = delta (standard normal under H0)."""
    q = _tango_q(n, n10, n01, delta)
    var = n * (2.0 * q + delta * (1.0 - delta))
    diff = n10 - n01 - n * delta
    if var <= 0.0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def paired_difference_interval(n: float, n10: float, n01: float,
                               confidence: float = 0.95) -> tuple[float, float]:
    """Tango's score interval of p10 − p01 (fractions), from the discordant counts.

    Args:
        n: paired samples. n10: first right, second wrong. n01: first wrong, second right.
            Counts, or counts divided by a design effect (Rao–Scott), hence floats.
        confidence: two-sided level.

    Returns:
        (low, high) within [−1, 1]; the observed (n10 − n01)/n lies inside.
    """
    if n < 1 or n10 < 0 or n01 < 0 or n10 + n01 > n:
        raise ValueError(f"bad paired counts n={n}, n10={n10}, n01={n01}")
    z = z_value(confidence)
    est = (n10 - n01) / n
    # The statistic falls as delta grows (the numerator falls, the variance follows), so
    # each bound is the root of T(delta) = ±z on its side of the estimate.
    low = est if n10 - n01 == -n else _root(n, n10, n01, -1.0, est, z)
    high = est if n10 - n01 == n else _root(n, n10, n01, est, 1.0, -z)
    return low, high


def _root(n: int, n10: int, n01: int, lo: float, hi: float, target: float) -> float:
    """delta in [lo, hi] where the decreasing statistic crosses `target` (bisection)."""
    if tango_statistic(n, n10, n01, lo) <= target:
        return lo
    if tango_statistic(n, n10, n01, hi) >= target:
        return hi
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2.0
        if tango_statistic(n, n10, n01, mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


@dataclass(frozen=True)
class DropInterval:
    """A drop in points with its two-sided interval and how it was computed (for a paired
    top-1 drop: its discordant counts and the design effect its counts were divided by)."""

    value: float
    low: float
    high: float
    method: str
    n10: int = 0
    n01: int = 0
    design_effect: float = 1.0
    clusters: int | None = None


def _clustered(deff: float, clusters: int | None) -> str:
    if deff == 1.0 and clusters is None:
        return ""
    return (f"; Rao–Scott adjusted for {clusters} clusters (design effect {deff:.3g}: the "
            f"counts count as {1 / deff:.3g} of independent samples)")


def top1_drop(n: int, n10: int, n01: int, confidence: float = 0.95, *, deff: float = 1.0,
              clusters: int | None = None) -> DropInterval:
    """Top-1 drop (baseline − candidate) in points, Tango's score interval on the counts
    divided by the design effect `deff` (≥ 1; Rao–Scott) of `clusters` clusters."""
    _check_deff(deff)
    lo, hi = paired_difference_interval(n / deff, n10 / deff, n01 / deff, confidence)
    return DropInterval(value=0.0 + 100.0 * (n10 - n01) / n, low=0.0 + 100.0 * lo,
                        high=0.0 + 100.0 * hi,
                        method=f"paired top-1 difference, Tango score {confidence:.0%} interval"
                               + _clustered(deff, clusters),
                        n10=n10, n01=n01, design_effect=deff, clusters=clusters)


def paired_top1_drop(baseline_correct: np.ndarray, candidate_correct: np.ndarray,
                     confidence: float = 0.95,
                     groups: np.ndarray | None = None) -> DropInterval:
    """`top1_drop` from two per-sample correctness vectors of the same samples, its counts
    divided by the design effect of `groups` (None: independent samples)."""
    base = np.asarray(baseline_correct, dtype=bool)
    cand = np.asarray(candidate_correct, dtype=bool)
    n = int(len(base))
    deff = design_effect(base.astype(np.int8) - cand.astype(np.int8), groups)
    return top1_drop(n, int((base & ~cand).sum()), int((~base & cand).sum()), confidence,
                     deff=deff, clusters=None if groups is None else cluster_count(groups, n))


def disagreement_drop(n: int, differ: int, confidence: float = 0.95, *, deff: float = 1.0,
                      clusters: int | None = None) -> DropInterval:
    """Disagreement with the original model's top-1 in points, Wilson score interval on the
    counts divided by the design effect `deff` (≥ 1; Rao–Scott)."""
    _check_deff(deff)
    lo, hi = wilson_interval(differ / deff, n / deff, confidence)
    return DropInterval(value=100.0 * differ / n, low=100.0 * lo, high=100.0 * hi,
                        method=f"top-1 agreement with the original model, Wilson "
                               f"{confidence:.0%} interval" + _clustered(deff, clusters))


def _check_deff(deff: float) -> None:
    if not (deff >= 1.0 and math.isfinite(deff)):
        raise ValueError(f"a design effect is a finite number ≥ 1, not {deff}")


@dataclass(frozen=True)
class BudgetRule:
    """The accuracy budget in points of the run's metric, and the test against it.

    Attributes:
        points: the allowed drop in percentage points (absolute).
        confidence: two-sided level of the drop intervals the rule reads.
    """

    points: float
    confidence: float = 0.95
    interval: str = "Tango's score interval for top-1, Wilson for agreement"

    def __post_init__(self) -> None:
        if not (self.points >= 0.0 and math.isfinite(self.points)):
            raise ConfigError(f"the accuracy budget must be a finite number of points ≥ 0, "
                              f"not {self.points}")

    @classmethod
    def from_option(cls, max_drop: float, drop_type: str, baseline_pct: float,
                    confidence: float = 0.95, interval: str | None = None) -> "BudgetRule":
        """--max-drop as given (absolute points) or as a percentage of the baseline's
        metric (relative). `interval` names how the drops' intervals are computed (for
        the rule's text; the rule itself is the same for every metric)."""
        extra = {"interval": interval} if interval else {}
        if drop_type == "relative":
            return cls(max_drop * baseline_pct / 100.0, confidence, **extra)
        if drop_type != "absolute":
            raise ConfigError(f"drop type must be absolute or relative, not {drop_type!r}")
        return cls(max_drop, confidence, **extra)

    def within(self, drop_high: float | None) -> bool | None:
        """Whether a drop whose interval's upper end is `drop_high` points is within budget
        (None when there is no drop to judge). A 1e-9 tolerance absorbs float rounding."""
        if drop_high is None:
            return None
        return drop_high <= self.points + 1e-9

    def clearly_over(self, drop_low: float | None) -> bool:
        """Even the lower end of the interval exceeds the budget (screening's discard rule)."""
        return drop_low is not None and drop_low > self.points + 1e-9

    def text(self) -> str:
        return (f"within budget when the upper end of the drop's two-sided "
                f"{self.confidence:.0%} interval (paired, same samples; {self.interval}) "
                f"is at most {self.points:g} points")
