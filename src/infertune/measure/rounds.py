"""Measuring one runtime, and comparing several side by side in interleaved rounds.

On a shared machine speed drifts by ±15% over minutes (SPEC). Measuring A fully and then B
would charge that drift to whichever ran in the slow minutes; measuring A B A B ... in
rounds exposes both to the same drift, and the ratio *within* a round cancels most of it.
A speedup is therefore the median of the per-round ratios of p50s, quoted with their spread.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..types import InputSpec
from . import stats
from .fingerprint import fingerprint
from .isolate import artifact_bytes, run_job
from ..runtimes.session import SessionFactory
from .timing import THROUGHPUT_TIMING, TimingConfig

Runner = Callable[..., dict]


def default_threads() -> int:
    """Physical cores: SMT siblings share one core's vector units, so a CNN gains little
    from them and the loop becomes noisier."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def _per_image_shape(input_shape: InputSpec | Sequence[int]) -> tuple[list[int], str]:
    if isinstance(input_shape, InputSpec):
        return list(input_shape.chw), input_shape.dtype
    return [int(d) for d in input_shape], "float32"


def make_job(factory: SessionFactory, *, input_shape: InputSpec | Sequence[int],
             batch: int = 1, throughput: Sequence[int] | str = (),
             timing: TimingConfig = TimingConfig(),
             throughput_timing: TimingConfig = THROUGHPUT_TIMING, threads: int | None = None,
             memory_cap_mb: float | None = None, max_batch: int = 256, device: str = "cpu",
             energy: bool = True, overhead: bool = True, seed: int = 0,
             parity: dict[str, Any] | None = None, e2e: dict[str, Any] | None = None,
             speed: bool = True) -> dict[str, Any]:
    """The JSON job the worker runs (its fields are documented in worker.py).

    A factory whose options name a "device" (a GPU runtime) overrides `device`, so that
    one comparison can hold CPU and GPU runtimes and each reads its own energy counter.
    """
    if throughput != "auto" and isinstance(throughput, str):
        raise ConfigError(f"throughput must be a list of batch sizes or 'auto', not {throughput!r}")
    if memory_cap_mb is None and throughput == "auto":
        import psutil  # default cap: 3/4 of this machine's memory, leaving room for the OS

        memory_cap_mb = 0.75 * psutil.virtual_memory().total / 2**20
    shape, dtype = _per_image_shape(input_shape)
    return {"session": factory.to_dict(), "input": {"shape": shape, "dtype": dtype, "seed": seed},
            "batch": int(batch),
            "throughput": "auto" if throughput == "auto" else [int(b) for b in throughput],
            "timing": timing.to_dict(), "throughput_timing": throughput_timing.to_dict(),
            "threads": int(threads or default_threads()), "memory_cap_mb": memory_cap_mb,
            "max_batch": int(max_batch), "device": str(factory.options.get("device", device)),
            "energy": energy, "overhead": overhead, "parity": parity, "e2e": e2e,
            "speed": bool(speed)}


def default_timeout_s(job: dict[str, Any]) -> float:
    """A generous wall-clock limit: 5 minutes of slack (imports, cold start, slow calls of a
    big model) plus three times every phase's minimum duration."""
    n_batches = (job["max_batch"].bit_length() if job["throughput"] == "auto"
                 else len(job["throughput"]))
    phases = job["timing"]["min_seconds"] * (2 if job.get("e2e") else 1)
    return 300.0 + 3 * (phases + n_batches * job["throughput_timing"]["min_seconds"])


def measure(factory: SessionFactory, *, timeout_s: float | None = None,
            with_fingerprint: bool = True, **job_options: Any) -> dict[str, Any]:
    """Measures one runtime in its own child process.

    Args:
        factory: what to open.
        timeout_s: wall-clock limit for the child; default_timeout_s(job) if None.
        with_fingerprint: attach the machine fingerprint under "fingerprint".
        **job_options: make_job's keywords (input_shape is required).

    Returns:
        One result (see isolate.RESULT_KEYS); status "ok" | "failed" | "timeout" |
        "unavailable" with a one-line reason. It never raises for a runtime's failure.
    """
    job = make_job(factory, **job_options)
    res = run_job(job, timeout_s if timeout_s is not None else default_timeout_s(job))
    size = artifact_bytes(factory.artifact)
    res["artifact_mb"] = size / 2**20 if size is not None else None
    if with_fingerprint:
        res["fingerprint"] = fingerprint()
    return res


def schedule(labels: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """The order of measurements: every runtime once per round, the same order each round."""
    return [(r, label) for r in range(rounds) for label in labels]


def _ok_p50(res: dict[str, Any]) -> float | None:
    if res.get("status") != "ok" or not res.get("latency_ms"):
        return None
    return res["latency_ms"]["p50"]


def summarize(results: list[list[dict[str, Any]]], labels: Sequence[str]) -> list[dict]:
    """Per runtime: p50 of each round, their median, and the speedup vs the first runtime.

    The speedup of round r is baseline p50 / runtime p50, both from round r; rounds where
    either failed are left out (n says how many were used).
    """
    out = []
    for i, label in enumerate(labels):
        p50s = [_ok_p50(row[i]) for row in results]
        ratios = [_ok_p50(row[0]) / p for row, p in zip(results, p50s)
                  if p and _ok_p50(row[0]) is not None]
        ok = [p for p in p50s if p is not None]
        out.append({"label": label, "runtime": results[0][i]["runtime"] if results else None,
                    "statuses": [row[i]["status"] for row in results],
                    "reasons": [row[i].get("reason") for row in results if row[i].get("reason")],
                    "p50_ms_by_round": p50s,
                    "p50_ms_median": stats.percentile(ok, 50) if ok else None,
                    "noisy_rounds": sum(bool(row[i].get("noisy")) for row in results),
                    "speedup": stats.ratio_summary(ratios)})
    return out


def compare(factories: Sequence[SessionFactory], *, rounds: int = 3,
            runner: Runner | None = None, **measure_options: Any) -> dict[str, Any]:
    """Measures every factory once per round, interleaved (A B A B ...), each in its own child.

    Args:
        factories: the runtimes; the first one is the baseline of every speedup.
        rounds: how many rounds (>= 1; 3 or more for a median to mean anything).
        runner: measure() by default; a test passes a fake that returns canned results.
        **measure_options: passed to every measure() call (input_shape, batch, timing...).

    Returns:
        {"order", "rounds", "results": [[result per factory] per round], "summary",
         "fingerprint"}: the fingerprint once for the whole comparison (one machine).
    """
    labels = [f.name for f in factories]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"runtimes to compare need distinct labels, got {labels}")
    if rounds < 1 or not factories:
        raise ConfigError("compare needs at least one runtime and one round")
    run = runner or (lambda f, **kw: measure(f, with_fingerprint=False, **kw))
    by_label = dict(zip(labels, factories))
    results: list[list[dict[str, Any]]] = [[] for _ in range(rounds)]
    for r, label in schedule(labels, rounds):
        res = run(by_label[label], **measure_options)
        results[r].append({**res, "round": r})
    return {"order": labels, "rounds": rounds, "results": results,
            "summary": summarize(results, labels), "fingerprint": fingerprint()}
