"""Pure statistics on timing samples: no clock, no I/O, no numpy (the parent stays lean).

Percentiles use linear interpolation between closest ranks, which is numpy's default
(`method="linear"`), so numbers here can be re-derived with `np.percentile(samples, q)`.
The standard deviation is the sample one (ddof=1): the samples are a sample of the
runtime's latency distribution, not the whole of it.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

# Coefficient of variation (std / mean) above which a latency measurement is flagged noisy.
# Why 10%: a CPU inference loop on a quiet machine shows a CV of 1-5%; interference from
# other tenants, frequency changes or throttling shows up as long tails that push it past
# 10%. The decisions infertune makes hinge on differences of ~5-15% (see SPEC: single runs
# swing ±15% here), so at a CV above 10% one run alone cannot be trusted to rank two
# runtimes: compare them in interleaved rounds instead (rounds.py).
NOISY_CV = 0.10

NS_PER_MS = 1e6


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation (numpy's default method).

    Raises:
        ValueError: no samples, or q outside [0, 100].
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], not {q}")
    xs = sorted(samples)
    h = (len(xs) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def mean(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("mean of no samples")
    return math.fsum(samples) / len(samples)


def std(samples: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1); 0.0 for fewer than two samples."""
    n = len(samples)
    if n < 2:
        return 0.0
    m = mean(samples)
    return math.sqrt(math.fsum((x - m) ** 2 for x in samples) / (n - 1))


def cv(samples: Sequence[float]) -> float:
    """Coefficient of variation std/mean (dimensionless); 0.0 when the mean is 0."""
    m = mean(samples)
    return std(samples) / m if m else 0.0


def is_noisy(cv_value: float, threshold: float = NOISY_CV) -> bool:
    return cv_value > threshold


def latency_summary(samples_ns: Iterable[int], *, keep_samples: bool = True) -> dict:
    """Turns per-call times in nanoseconds into the `latency_ms` block of a result.

    Returns:
        {"p50","p90","p99","mean","std","n","samples"} in milliseconds ("samples" is the
        raw list in call order, or omitted when keep_samples is False).
    """
    ms = [s / NS_PER_MS for s in samples_ns]
    out = {"p50": percentile(ms, 50), "p90": percentile(ms, 90), "p99": percentile(ms, 99),
           "mean": mean(ms), "std": std(ms), "n": len(ms)}
    if keep_samples:
        out["samples"] = ms
    return out


def noise_verdict(summary: dict, threshold: float = NOISY_CV) -> tuple[float, bool, str | None]:
    """(cv, noisy, warning text or None) for a latency summary."""
    c = summary["std"] / summary["mean"] if summary["mean"] else 0.0
    if not is_noisy(c, threshold):
        return c, False, None
    return c, True, (f"latency CV {c:.1%} > {threshold:.0%}: the machine was noisy during this "
                     "measurement; rank runtimes by interleaved rounds, not by this run alone")


def ratio_summary(ratios: Sequence[float]) -> dict | None:
    """Median and spread of per-round ratios (e.g. speedups); None when there are none.

    Returns:
        {"median","min","max","q1","q3","n"}: q1/q3 are the 25th/75th percentiles, so
        q3 - q1 is the IQR of the per-round ratios.
    """
    if not ratios:
        return None
    return {"median": percentile(ratios, 50), "min": min(ratios), "max": max(ratios),
            "q1": percentile(ratios, 25), "q3": percentile(ratios, 75), "n": len(ratios)}


def throughput_ips(samples_ns: Sequence[int], batch: int) -> float:
    """Sustained images per second: all images of the loop over all of its time.

    Total/total rather than batch/p50: throughput is what a busy server sustains, slow
    calls included.
    """
    total = sum(samples_ns)
    if total <= 0:
        raise ValueError("throughput of a loop that took no time")
    return batch * len(samples_ns) * 1e9 / total
