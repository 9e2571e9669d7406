"""Confidence intervals and the exact McNemar test, in numpy and the standard library.

* Wilson score interval for a proportion (top-1, top-5, agreement): good coverage even
  near 0 or 1 and for small n, where the textbook normal interval fails.
* Percentile bootstrap for statistics of a sample (macro F1, paired differences). The
  resamples are drawn as multinomial counts over the distinct outcomes instead of as
  index arrays: resampling n samples with replacement is exactly a multinomial draw over
  the outcome cells, so the cost is O(resamples × cells) rather than O(resamples × n).
* Rao–Scott design effect of a mean under clustering (`design_effect`), by which clustered
  counts are divided before an interval that assumes independent samples is computed.
* McNemar's exact test: a two-sided binomial test on the discordant pairs, summed in
  log space (math.lgamma) so large counts neither overflow nor need scipy.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Callable, Iterator

import numpy as np

# Resamples drawn at once: bounds the (chunk × cells) count matrix to ~32 MB.
_MAX_CHUNK_CELLS = 4_000_000


def z_value(confidence: float) -> float:
    """Two-sided standard-normal quantile: 1.96 for 0.95."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for successes/n.

    Args:
        successes: number of successes, 0 ≤ successes ≤ n.
        n: number of trials; n = 0 gives the uninformative (0, 1).
        confidence: two-sided level.

    Returns:
        (lo, hi), within [0, 1].
    """
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..{n}, not {successes}")
    z = z_value(confidence)
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At p = 0 or 1 the bound equals p exactly; rounding must not push it past p.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def design_effect(values: np.ndarray, groups: np.ndarray | None) -> float:
    """Rao–Scott design effect of the mean of per-sample `values` under clustering by `groups`.

    D = V_cluster / V_independent, where V_independent = s²/n (s² the sample variance) and
    V_cluster = G/(G−1) · Σ_g (Σ_{i∈g} (v_i − v̄))² / n² is the cluster-robust (sandwich)
    variance of the mean over G clusters. Floored at 1, so that clustered samples never
    count for more than independent ones (metrics.budget). 1 when `groups` is None, when
    every sample is its own cluster, when there is one cluster only, or when the values do
    not vary (nothing to inflate).

    Args:
        values: per-sample numbers, e.g. baseline-correct − candidate-correct in {−1, 0, 1}.
        groups: cluster label of each sample (any hashable numpy dtype), or None.
    """
    if groups is None:
        return 1.0
    v = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups)
    if g.shape != v.shape:
        raise ValueError(f"{len(g)} group labels for {len(v)} samples")
    n = len(v)
    _, inverse = np.unique(g, return_inverse=True)
    clusters = int(inverse.max()) + 1 if n else 0
    if clusters in (0, 1, n):
        return 1.0
    centred = v - v.mean()
    ss = float(centred @ centred)
    if ss <= 0.0:
        return 1.0
    totals = np.bincount(inverse, weights=centred, minlength=clusters)
    v_cluster = clusters / (clusters - 1) * float(totals @ totals) / (n * n)
    v_independent = ss / (n - 1) / n
    return max(1.0, v_cluster / v_independent)


def cluster_count(groups: np.ndarray | None, n: int) -> int:
    """Distinct clusters among `n` samples (`n` when there are no groups)."""
    return n if groups is None else int(len(np.unique(np.asarray(groups))))


def multinomial_resamples(counts: np.ndarray, n_boot: int, seed: int,
                          size: int | None = None) -> Iterator[np.ndarray]:
    """Bootstrap resamples of a sample summarised by its cell counts, in chunks.

    Args:
        counts: how many samples fell in each distinct outcome cell (sums to n).
        n_boot: number of resamples.
        seed: seed of numpy's default generator.
        size: samples per resample; default n. Clustered samples resample n / D of them
            (D the design effect), which spreads a ratio statistic as Rao–Scott's
            division of the counts does.

    Yields:
        int64 arrays (chunk, cells): each row is one resample's counts, summing to `size`.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("cannot bootstrap an empty sample")
    draws = n if size is None else int(size)
    if draws < 1:
        raise ValueError(f"a resample needs at least 1 sample, not {draws}")
    rng = np.random.default_rng(seed)
    pvals = counts / n
    chunk = max(1, min(n_boot, _MAX_CHUNK_CELLS // max(1, len(counts))))
    for start in range(0, n_boot, chunk):
        yield rng.multinomial(draws, pvals, size=min(chunk, n_boot - start))


def bootstrap_intervals(counts: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
                        *, n_boot: int = 1000, seed: int = 0,
                        confidence: float = 0.95, size: int | None = None) -> np.ndarray:
    """Percentile bootstrap intervals of one or more statistics of cell counts.

    Args:
        counts: the observed sample as counts per outcome cell.
        statistic: maps a (resamples, cells) count matrix to a (resamples, m) array, m
            statistics per resample (a (resamples,) array means m = 1); vectorised.
        n_boot: number of resamples.
        seed: seed, so the same data always gives the same intervals.
        confidence: two-sided level.
        size: samples per resample (`multinomial_resamples`); default all.

    Returns:
        (m, 2) array of (lo, hi): the (1−c)/2 and (1+c)/2 quantiles of each statistic.
    """
    _check_confidence(confidence)
    blocks = []
    for block in multinomial_resamples(counts, n_boot, seed, size):
        values = np.asarray(statistic(block), dtype=np.float64)
        blocks.append(values.reshape(len(block), -1))
    values = np.concatenate(blocks)
    return np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0).T


def bootstrap_interval(counts: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
                       *, n_boot: int = 1000, seed: int = 0,
                       confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of one statistic (see `bootstrap_intervals`)."""
    lo, hi = bootstrap_intervals(counts, statistic, n_boot=n_boot, seed=seed,
                                 confidence=confidence)[0]
    return float(lo), float(hi)


def mcnemar_exact(n01: int, n10: int) -> float:
    """Two-sided exact McNemar p-value for discordant-pair counts n01 and n10.

    Under the null hypothesis (both models equally accurate) each discordant pair falls
    either way with probability 1/2, so p = min(1, 2·P[Binomial(n01+n10, 1/2) ≤ min]).
    No discordant pairs gives p = 1.
    """
    if n01 < 0 or n10 < 0:
        raise ValueError("discordant counts must be non-negative")
    m, k = n01 + n10, min(n01, n10)
    if m == 0 or 2 * k == m:
        return 1.0
    log_terms = [_log_comb(m, i) - m * math.log(2.0) for i in range(k + 1)]
    top = max(log_terms)
    tail = math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms)
    return min(1.0, 2.0 * tail)


def _log_comb(m: int, i: int) -> float:
    return math.lgamma(m + 1) - math.lgamma(i + 1) - math.lgamma(m - i + 1)

