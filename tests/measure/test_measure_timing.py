"""timing.py: the loop's stopping rule under a fake clock, the overhead probe, and the
doubling search for the best batch size (pure, canned numbers)."""
from __future__ import annotations

import pytest

from infertune.measure import timing
from infertune.measure.timing import TimingConfig


class FakeClock:
    """Reading the clock costs no time; each call of `work` advances it by its argument."""

    def __init__(self):
        self.now = 0
        self.calls = 0

    def __call__(self) -> int:
        return self.now

    def work(self, ns: int) -> None:
        self.calls += 1
        self.now += ns


def test_min_runs_dominates_for_slow_calls():
    clock = FakeClock()
    cfg = TimingConfig(warmup=3, min_runs=50, min_seconds=0.01)
    samples = timing.time_calls(clock.work, 1_000_000, cfg, clock=clock)  # 1 ms per call
    assert len(samples) == 50 and set(samples) == {1_000_000}
    assert clock.calls == 53  # warm-up calls are made but not kept


def test_min_seconds_dominates_for_fast_calls():
    clock = FakeClock()
    cfg = TimingConfig(warmup=0, min_runs=5, min_seconds=1.0)
    samples = timing.time_calls(clock.work, 10_000_000, cfg, clock=clock)  # 10 ms per call
    assert len(samples) == 100  # exactly 1 s of timed calls


def test_warmup_is_not_timed():
    clock = FakeClock()
    durations = iter([5_000_000_000] * 2 + [1_000] * 100)  # two very slow warm-up calls
    samples = timing.time_calls(lambda _: clock.work(next(durations)), None,
                                TimingConfig(warmup=2, min_runs=10, min_seconds=0), clock=clock)
    assert samples == [1_000] * 10


def test_max_runs_bounds_a_fast_loop():
    clock = FakeClock()
    cfg = TimingConfig(warmup=0, min_runs=5, min_seconds=10.0, max_runs=20)
    assert len(timing.time_calls(clock.work, 1, cfg, clock=clock)) == 20


def test_timing_config_validation_and_roundtrip():
    with pytest.raises(ValueError):
        TimingConfig(min_runs=0)
    with pytest.raises(ValueError):
        TimingConfig(min_runs=10, max_runs=5)
    cfg = TimingConfig(warmup=1, min_runs=2, min_seconds=0.5)
    assert TimingConfig.from_dict(cfg.to_dict()) == cfg


def test_overhead_probe_reports_microseconds_per_call():
    state = {"now": 0}

    def clock() -> int:  # every clock read costs 100 ns: a no-op sample is 100 ns
        state["now"] += 100
        return state["now"]

    out = timing.overhead_probe(TimingConfig(warmup=0, min_runs=10, min_seconds=0), clock=clock)
    assert out["p50_us"] == pytest.approx(0.1) and out["n"] == 10


def test_overhead_probe_real_clock_is_small():
    out = timing.overhead_probe(TimingConfig(warmup=10, min_runs=1000, min_seconds=0))
    assert 0 < out["p50_us"] < 1000  # sanity only: never a timing assertion


def _search(ips, rss=None, cap=1e9, max_batch=256):
    rss = rss or {}
    last = {"b": 0}

    def measure(b):
        last["b"] = b
        if isinstance(ips[b], Exception):
            raise ips[b]
        return ips[b]

    return timing.search_best_batch(measure, lambda: rss.get(last["b"], 100.0),
                                    cap_mb=cap, max_batch=max_batch)


def test_search_stops_when_gain_is_3_percent_or_less():
    out = _search({1: 100.0, 2: 180.0, 4: 250.0, 8: 255.0, 16: 400.0})
    assert out["ips"] == {1: 100.0, 2: 180.0, 4: 250.0, 8: 255.0}  # 16 never tried
    assert out["best"] == 8 and "<= 3%" in out["stopped"]


def test_search_keeps_the_best_even_when_the_last_step_got_slower():
    out = _search({1: 100.0, 2: 200.0, 4: 150.0})
    assert out["best"] == 2


def test_search_stops_before_the_memory_cap():
    # Peak RSS 100, 150, 250: the step to 4 added 100 MiB, so 8 would add ~200 -> 450 > 400.
    out = _search({1: 100.0, 2: 200.0, 4: 400.0, 8: 800.0}, rss={1: 100, 2: 150, 4: 250},
                  cap=400)
    assert list(out["ips"]) == [1, 2, 4] and out["best"] == 4
    assert "batch 8 would pass the memory cap" in out["stopped"]


def test_search_drops_a_batch_that_passed_the_cap_and_survives_failures():
    out = _search({1: 100.0, 2: 200.0}, rss={1: 100, 2: 900}, cap=400)
    assert out["ips"] == {1: 100.0} and "passed the memory cap" in out["stopped"]
    out = _search({1: 100.0, 2: MemoryError("no room")})
    assert out["best"] == 1 and "MemoryError" in out["stopped"]


def test_search_respects_max_batch():
    out = _search({b: 100.0 * b for b in (1, 2, 4, 8)}, max_batch=8)
    assert out["best"] == 8 and "max_batch" in out["stopped"]
