"""Pure functions that turn the harness's per-round results into `bench`'s result rows.

One row per runtime and batch size. Across the rounds of one runtime:
- latency: the samples of every ok round pooled, in round order, then summarised (p50 of all
  calls, across the machine's drift over the rounds); the per-round p50s are kept too;
- throughput: pooled images over pooled time where the latency loop measured it, else the
  median of the rounds;
- cold start, compile time, energy: the median of the rounds (each round is a fresh process,
  so each has its own cold start); peak RSS: the largest of the rounds (memory must fit the
  worst case);
- speedup: compare()'s median of per-round ratios against the first runtime, with spread;
- status: "ok" only if every round was; otherwise the first bad round's status and reason
  (the ok rounds' numbers are kept next to it).
No numpy, no framework: testable on canned dicts.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..measure import stats

ROW_KEYS = ("runtime", "label", "batch", "status", "reason", "latency_ms", "throughput_ips",
            "best_batch", "peak_rss_mb", "artifact_mb", "cold_start_ms", "compile_ms",
            "energy_j_per_image", "energy_reason", "speedup", "speedup_vs", "p50_ms_by_round",
            "rounds", "rounds_ok", "threads", "noisy_rounds", "parity", "session_info", "e2e",
            "build", "warnings")


def empty_row(runtime: str, batch: int, threads: int, status: str | None = None,
              reason: str | None = None) -> dict[str, Any]:
    """A row with every key, None where nothing was measured."""
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(runtime=runtime, label=runtime, batch=batch, status=status, reason=reason,
               threads=threads, throughput_ips={}, rounds=0, rounds_ok=0, warnings=[])
    return row


def summarize_ms(samples: Sequence[float], keep_samples: bool = True) -> dict[str, Any]:
    """p50/p90/p99/mean/std/n of millisecond samples (the harness's latency_ms block)."""
    out = {"p50": stats.percentile(samples, 50), "p90": stats.percentile(samples, 90),
           "p99": stats.percentile(samples, 99), "mean": stats.mean(samples),
           "std": stats.std(samples), "n": len(samples)}
    if keep_samples:
        out["samples"] = list(samples)
    return out


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return stats.percentile(present, 50) if present else None


def pooled_latency(ok: Sequence[dict[str, Any]], key: str = "latency_ms") -> dict | None:
    samples = [s for r in ok for s in ((r.get(key) or {}).get("samples") or [])]
    return summarize_ms(samples) if samples else None


def pooled_throughput(ok: Sequence[dict[str, Any]], batch: int,
                      latency: dict | None) -> dict[str, float]:
    """{batch: images/s}: pooled from the latency samples for the latency batch."""
    keys = sorted({k for r in ok for k in (r.get("throughput_ips") or {})}, key=int)
    out = {}
    for k in keys:
        if int(k) == batch and latency and latency["samples"]:
            out[k] = batch * latency["n"] * 1e3 / sum(latency["samples"])
        else:
            out[k] = _median([(r.get("throughput_ips") or {}).get(k) for r in ok])
    return out


def _verdict(rounds: Sequence[dict[str, Any]]) -> tuple[str, str | None]:
    for r in rounds:
        if r.get("status") != "ok":
            where = f"round {r.get('round', 0) + 1}: " if len(rounds) > 1 else ""
            return r.get("status") or "failed", f"{where}{r.get('reason')}"
    return "ok", None


def _session_number(ok: Sequence[dict[str, Any]], key: str) -> float | None:
    return _median([(r.get("session_info") or {}).get(key) for r in ok])


def _e2e(ok: Sequence[dict[str, Any]], model_latency: dict | None) -> dict | None:
    blocks = [r["e2e"] for r in ok if r.get("e2e")]
    if not blocks:
        return None
    latency = pooled_latency(blocks)
    model_p50 = model_latency["p50"] if model_latency else None
    common = {"latency_ms": latency, "images": blocks[0].get("images"),
              "preprocess": blocks[0].get("preprocess"), "model_only_p50_ms": model_p50,
              "added_p50_ms": latency["p50"] - model_p50 if latency and model_p50 else None}
    if blocks[0].get("task") == "detection":
        return _detection_e2e(blocks, common)
    return {**common, "first_label": blocks[0].get("first_label")}


DETECTION_E2E_KEPT = ("postprocess_images", "score_threshold", "nms_threshold",
                      "first_image", "first_detections")


def _detection_e2e(blocks: Sequence[dict[str, Any]], common: dict[str, Any]) -> dict[str, Any]:
    """A detector's e2e block: the parts timed alone pooled like the end-to-end loop, and
    what the parts leave unexplained (p50s; glue and cache effects, or noise when < 0)."""
    pre, post = pooled_latency(blocks, "preprocess_ms"), pooled_latency(blocks, "postprocess_ms")
    parts = [common["latency_ms"], pre, post, common["model_only_p50_ms"]]
    rest = None
    if all(p is not None for p in parts):
        rest = common["latency_ms"]["p50"] - pre["p50"] - post["p50"] - common["model_only_p50_ms"]
    first = blocks[0]
    return {"task": "detection", **common, "preprocess_ms": pre, "postprocess_ms": post,
            "unexplained_p50_ms": rest,
            "boxes_per_image": _median([b.get("boxes_per_image") for b in blocks]),
            **{k: first.get(k) for k in DETECTION_E2E_KEPT}}


def _warnings(rounds: Sequence[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in rounds:
        for w in r.get("warnings") or []:
            if w not in seen:
                seen.append(w)
    return seen


def aggregate(rounds: Sequence[dict[str, Any]], summary: dict[str, Any], *, batch: int,
              threads: int, baseline: str | None) -> dict[str, Any]:
    """One row from one runtime's results of every round and its compare() summary."""
    first = rounds[0] if rounds else {}
    row = empty_row(first.get("runtime") or summary.get("runtime"), batch, threads)
    ok = [r for r in rounds if r.get("status") == "ok"]
    status, reason = _verdict(rounds)
    latency = pooled_latency(ok)
    rss = [r["peak_rss_mb"] for r in ok if r.get("peak_rss_mb") is not None]
    row.update(label=summary.get("label") or row["runtime"], status=status, reason=reason,
               latency_ms=latency, throughput_ips=pooled_throughput(ok, batch, latency),
               peak_rss_mb=max(rss) if rss else None, artifact_mb=first.get("artifact_mb"),
               cold_start_ms=_median([r.get("cold_start_ms") for r in ok]),
               compile_ms=_session_number(ok, "compile_ms"),
               energy_j_per_image=_median([r.get("energy_j_per_image") for r in ok]),
               energy_reason=next((r.get("energy_reason") for r in rounds
                                   if r.get("energy_reason")), None),
               speedup=summary.get("speedup"), speedup_vs=baseline,
               p50_ms_by_round=summary.get("p50_ms_by_round"), rounds=len(rounds),
               rounds_ok=len(ok), noisy_rounds=summary.get("noisy_rounds", 0),
               parity=next((r["parity"] for r in rounds if r.get("parity")), None),
               session_info=(ok[0] if ok else first).get("session_info"),
               e2e=_e2e(ok, latency), warnings=_warnings(rounds))
    ips = row["throughput_ips"]
    row["best_batch"] = int(max(ips, key=lambda k: ips[k] or 0)) if ips else None
    return row
