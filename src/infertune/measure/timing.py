"""The timing loop: warm-up, then at least `min_runs` calls *and* at least `min_seconds`.

Every call is timed on its own with `time.perf_counter_ns` (monotonic, integer ns, no float
rounding), so percentiles and the spread come from real per-call samples. The clock is a
parameter so that tests can drive the loop with a fake clock and check the stopping rule
deterministically.
"""
from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from . import stats

Clock = Callable[[], int]


@dataclass(frozen=True)
class TimingConfig:
    """How long to measure.

    Attributes:
        warmup: untimed calls first (caches, lazy allocations, JIT, thread pools spin up).
        min_runs: at least this many timed calls, whatever their duration.
        min_seconds: and at least this much timed wall time, so short calls are sampled
            across enough of the machine's background activity.
        max_runs: a bound on the samples kept for very fast calls once both minimums are
            met (memory; a no-op reaches millions within min_seconds).
    """

    warmup: int = 10
    min_runs: int = 50
    min_seconds: float = 5.0
    max_runs: int = 1_000_000

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_runs < 1 or self.min_seconds < 0:
            raise ValueError(f"bad timing config {self}")
        if self.max_runs < self.min_runs:
            raise ValueError(f"max_runs {self.max_runs} < min_runs {self.min_runs}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "TimingConfig":
        return cls(**(data or {}))


# Throughput per batch size needs a stable mean, not tail percentiles: fewer runs suffice.
THROUGHPUT_TIMING = TimingConfig(warmup=3, min_runs=10, min_seconds=2.0)
# The overhead probe times a no-op: thousands of calls take well under a second.
PROBE_TIMING = TimingConfig(warmup=1000, min_runs=20_000, min_seconds=0.2, max_runs=200_000)


def time_calls(fn: Callable[[Any], Any], arg: Any, config: TimingConfig = TimingConfig(), *,
               clock: Clock = time.perf_counter_ns) -> list[int]:
    """Calls `fn(arg)` config.warmup times untimed, then times calls until both minimums hold.

    `fn(arg)` rather than a closure: a wrapping lambda would add a Python frame to every
    sample; this way the no-op probe pays exactly what a real call pays.

    Returns:
        Per-call durations in nanoseconds, in call order.
    """
    for _ in range(config.warmup):
        fn(arg)
    # Collect the garbage left by warm-up now, so that it is not charged to a timed call;
    # later collections stay enabled because a serving process pays for them too.
    gc.collect()
    min_ns = int(config.min_seconds * 1e9)
    samples: list[int] = []
    append = samples.append  # bound once: the loop body is the harness's overhead
    start = clock()
    while True:
        t0 = clock()
        fn(arg)
        t1 = clock()
        append(t1 - t0)
        n = len(samples)
        if n >= config.min_runs and (t1 - start >= min_ns or n >= config.max_runs):
            return samples


def _noop(_: Any) -> None:
    return None


def overhead_probe(config: TimingConfig = PROBE_TIMING, *,
                   clock: Clock = time.perf_counter_ns) -> dict[str, float]:
    """The harness's own cost per timed call: the timing loop around a no-op callable.

    What a sample of a real call contains beyond the call itself is one clock read and one
    Python call of `fn(arg)`: exactly what a no-op sample measures.

    Returns:
        {"p50_us","mean_us","n"}: per-call overhead in microseconds.
    """
    samples = time_calls(_noop, None, config, clock=clock)
    us = [s / 1e3 for s in samples]
    return {"p50_us": stats.percentile(us, 50), "mean_us": stats.mean(us), "n": len(us)}


def time_bulk(fn: Callable[[Any], Any], arg: Any, n: int, *,
              clock: Clock = time.perf_counter_ns) -> float:
    """Mean ns per call of `n` calls timed as one block (no per-call clock reads).

    The reference the per-call loop is compared with: their difference is the harness's
    overhead on a real call (benchmarks/harness_overhead.py).
    """
    t0 = clock()
    for _ in range(n):
        fn(arg)
    return (clock() - t0) / n


def search_best_batch(measure_ips: Callable[[int], float], peak_rss_mb: Callable[[], float], *,
                      cap_mb: float, max_batch: int = 256, min_gain: float = 0.03) -> dict:
    """Doubling search for the batch size with the best throughput under a memory cap.

    Batches 1, 2, 4, ... are measured until throughput improves by no more than `min_gain`
    over the previous size, the next size would pass `cap_mb`, or `max_batch` is reached.
    The next size's peak RSS is extrapolated from the last step: activations grow in
    proportion to the batch, so doubling it adds twice what the last doubling added.

    Args:
        measure_ips: images/second at a batch size (may raise: the search stops there).
        peak_rss_mb: the process's peak RSS so far, in MiB (read after each measurement).
    Returns:
        {"ips": {batch: ips}, "best": batch or None, "stopped": why the search ended}.
    """
    ips: dict[int, float] = {}
    batch, prev_rss, stopped = 1, None, f"reached max_batch {max_batch}"
    while batch <= max_batch:
        try:
            ips[batch] = measure_ips(batch)
        except Exception as exc:  # an OOM or a runtime's batch limit ends the search only
            stopped = f"batch {batch} failed: {type(exc).__name__}: {exc}"
            break
        rss = peak_rss_mb()
        if rss > cap_mb:
            stopped = f"batch {batch} passed the memory cap ({rss:.0f} > {cap_mb:.0f} MiB)"
            del ips[batch]
            break
        prev = ips.get(batch // 2) if batch > 1 else None
        if prev is not None and ips[batch] <= prev * (1 + min_gain):
            stopped = f"throughput gain from {batch // 2} to {batch} is <= {min_gain:.0%}"
            break
        predicted = rss + 2 * (rss - prev_rss) if prev_rss is not None else rss
        if batch * 2 <= max_batch and predicted > cap_mb:
            stopped = (f"batch {batch * 2} would pass the memory cap (predicted "
                       f"{predicted:.0f} > {cap_mb:.0f} MiB)")
            break
        prev_rss, batch = rss, batch * 2
    best = max(ips, key=ips.__getitem__) if ips else None
    return {"ips": ips, "best": best, "stopped": stopped}
