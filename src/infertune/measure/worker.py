"""The child side of a measurement: `python -m infertune.measure.worker < job.json`.

Job (JSON on stdin; rounds.make_job builds it):
    session            SessionFactory.to_dict()
    input              {"shape": [C, H, W], "dtype": "float32", "seed": 0}
    batch              batch size of the latency measurement
    throughput         list of batch sizes, or "auto"
    timing, throughput_timing   TimingConfig dicts
    threads            thread count given to the opener (and set in the env by the parent)
    memory_cap_mb, max_batch    limits of the "auto" search
    device             "cpu" or "cuda[:i]" (chooses the energy counter)
    energy, overhead   whether to read energy / run the overhead probe
    parity             optional {"path": .npz of inputs + reference outputs, "rel_tolerance",
                       "why"}: the opened artifact must reproduce them (parity.py)
    speed              false for a check-only job (no latency/throughput phases)
    e2e                optional {"images", "preprocess", "shape"}: image-file-to-label timing
                       next to the model-only latency (e2e.py; batch 1)
    result_path        where the result is written, after every phase (absent: printed
                       on stdout at the end, for replaying a job by hand)

Phases, in order: import (the opener's module, with its framework: the modules an opener
names in its `preload` attribute are imported here, so that their import time is not
charged to the cold start), open + first call (cold start), parity (if asked), latency
(warm-up + timed loop, energy around it, peak RSS after it), e2e (if asked), throughput,
overhead probe. The result is rewritten after each, so the parent keeps the
finished phases of a child that crashes or hangs later.

Peak RSS is the kernel's high-water mark of this process's memory map, `VmHWM` in
/proc/self/status: it catches a spike of any duration at no cost to the timed loop, where
polling with psutil would miss short spikes (one inference's activations) and steal CPU from
the runtime on a 2-core machine. Not `getrusage().ru_maxrss`: Linux carries that figure
across fork+exec, so a child started by a parent holding a 1 GB model would report the
parent's peak, not its own (seen here: every child reported the pytest process's 785 MB).
"""
from __future__ import annotations

import faulthandler
import importlib
import json
import os
import resource
import sys
import time
from typing import Any

import numpy as np

from ..errors import RuntimeUnavailable
from ..runtimes.session import SessionFactory, get_opener
from . import energy, parity, stats, timing
from .e2e import run_e2e
from .isolate import THREAD_VARS, die_with_parent, empty_result, write_result


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (see the module docstring)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: macOS, BSD
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10  # bytes vs KiB


def make_input(spec: dict[str, Any], batch: int) -> np.ndarray:
    """A seeded random batch: same values for every runtime of a comparison."""
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    shape = (batch, *[int(d) for d in spec["shape"]])
    return rng.standard_normal(shape).astype(spec.get("dtype", "float32"))


class Progress:
    """The result being built, rewritten to result_path at each phase."""

    def __init__(self, job: dict[str, Any]):
        self.path = job.get("result_path")  # None when replayed by hand: stdout at the end
        self.res = empty_result(job)

    def phase(self, name: str) -> None:
        self.res["phase"] = name
        self.save()

    def save(self) -> None:
        if self.path:
            write_result(self.path, self.res)


def _cold_start(factory: SessionFactory, opener, job: dict[str, Any], res: dict[str, Any]):
    x = make_input(job["input"], job["batch"])
    options = {**factory.options, "threads": job["threads"]}
    t0 = time.perf_counter_ns()
    session = opener(str(factory.artifact), options)
    t1 = time.perf_counter_ns()
    session.run(x)
    t2 = time.perf_counter_ns()
    res.update(open_ms=(t1 - t0) / 1e6, cold_start_ms=(t2 - t0) / 1e6)
    describe = getattr(session, "describe", None)
    res["session_info"] = describe() if callable(describe) else None
    return session, x


def _latency(session, x: np.ndarray, job: dict[str, Any], res: dict[str, Any]) -> list[int]:
    meter, reason = (energy.open_meter(job.get("device", "cpu")) if job.get("energy", True)
                     else (None, "energy not requested"))
    if meter is not None:
        meter.start()
    samples = timing.time_calls(session.run, x, timing.TimingConfig.from_dict(job["timing"]))
    if meter is not None:
        joules = meter.stop()
        res["energy_j_per_image"] = energy.per_image(joules, len(samples) * job["batch"])
        reason = (f"measured by {meter.source} over the timed loop; whole-device energy, "
                  "idle power and other processes included")
    res["energy_reason"] = reason
    res["latency_ms"] = stats.latency_summary(samples)
    res["cv"], res["noisy"], warning = stats.noise_verdict(res["latency_ms"])
    if warning:
        res["warnings"].append(warning)
    res["peak_rss_mb"] = peak_rss_mb()
    return samples


def _measure_ips(session, job: dict[str, Any], batch: int) -> float:
    x = make_input(job["input"], batch)
    cfg = timing.TimingConfig.from_dict(job["throughput_timing"])
    return stats.throughput_ips(timing.time_calls(session.run, x, cfg), batch)


def _throughput_list(session, job: dict[str, Any], res: dict[str, Any],
                     latency: list[int]) -> dict[int, float]:
    ips, errors, rss = {}, {}, {}
    for b in job["throughput"]:
        try:  # the latency loop already timed this batch size: reuse its samples
            ips[b] = (stats.throughput_ips(latency, b) if b == job["batch"]
                      else _measure_ips(session, job, b))
        except Exception as exc:  # one batch size failing (OOM) spoils only its own entry
            errors[str(b)] = one_line(exc)
        rss[str(b)] = peak_rss_mb()
    res["rss_after_batch_mb"] = rss
    if errors:
        res["throughput_errors"] = errors
    return ips


def _throughput_auto(session, job: dict[str, Any], res: dict[str, Any]) -> dict[int, float]:
    cap = job.get("memory_cap_mb")
    found = timing.search_best_batch(lambda b: _measure_ips(session, job, b), peak_rss_mb,
                                     cap_mb=cap if cap else float("inf"),
                                     max_batch=int(job.get("max_batch", 256)))
    res["throughput_search"] = {"stopped": found["stopped"], "memory_cap_mb": cap}
    return found["ips"]


def _throughput(session, job: dict[str, Any], res: dict[str, Any], latency: list[int]) -> None:
    if job.get("throughput") == "auto":
        ips = _throughput_auto(session, job, res)
    else:
        ips = _throughput_list(session, job, res, latency) if job.get("throughput") else {}
    res["throughput_ips"] = {str(b): v for b, v in ips.items()}
    res["best_batch"] = max(ips, key=ips.__getitem__) if ips else None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:300]


def _import(factory: SessionFactory, res: dict[str, Any]):
    t0 = time.perf_counter_ns()
    opener = get_opener(factory.runtime, factory.module)
    for module in getattr(opener, "preload", ()):  # the framework, imported lazily otherwise
        importlib.import_module(module)
    res["import_ms"] = (time.perf_counter_ns() - t0) / 1e6
    return opener


def _parity(session, job: dict[str, Any], res: dict[str, Any]) -> None:
    res["parity"] = parity.run_check(session, job["parity"])
    if not res["parity"]["passed"]:
        raise parity.ParityError(res["parity"]["message"])


def _e2e(session, job: dict[str, Any], res: dict[str, Any]) -> None:
    p50 = res["latency_ms"]["p50"] if res.get("latency_ms") else None
    res["e2e"] = run_e2e(session, job["e2e"], timing.TimingConfig.from_dict(job["timing"]), p50)


def _speed(session, x, job: dict[str, Any], prog: Progress) -> None:
    prog.phase("latency")
    latency = _latency(session, x, job, prog.res)
    if job.get("e2e"):
        prog.phase("e2e")
        _e2e(session, job, prog.res)
    prog.phase("throughput")
    _throughput(session, job, prog.res, latency)
    if job.get("overhead", True):
        prog.phase("overhead")
        prog.res["harness_overhead_us"] = timing.overhead_probe()["p50_us"]


def _phases(job: dict[str, Any], prog: Progress) -> None:
    res = prog.res
    factory = SessionFactory.from_dict(job["session"])
    res["thread_env"] = {var: os.environ.get(var) for var in THREAD_VARS}
    prog.phase("import")
    opener = _import(factory, res)
    prog.phase("open")
    session, x = _cold_start(factory, opener, job, res)
    if job.get("parity"):
        prog.phase("parity")
        _parity(session, job, res)
    if job.get("speed", True):
        _speed(session, x, job, prog)
    prog.phase("close")
    session.close()


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Runs every phase of `job`; the verdict is in the returned (and written) result."""
    prog = Progress(job)
    res = prog.res
    try:
        _phases(job, prog)
        res.update(status="ok", reason=None, phase="done")
    except (ImportError, RuntimeUnavailable) as exc:  # the library or hardware is missing
        res.update(status="unavailable", reason=one_line(exc))
    except Exception as exc:
        res.update(status="failed", reason=f"{one_line(exc)} (phase '{res['phase']}')")
    finally:
        res["final_peak_rss_mb"] = peak_rss_mb()
        prog.save()
    return res


def main() -> int:
    die_with_parent()
    # On a segfault, print the Python stack to stderr: the parent quotes its last line.
    faulthandler.enable()
    job = json.loads(sys.stdin.read())
    res = run(job)
    if not job.get("result_path"):
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
