"""`infertune compare A B`: the pick (or the baseline, or a model card's model) of two runs,
metric by metric, with the uncertainty of each difference, and a CI verdict.

Decision (exit code 1 = regression), precisely:
* latency: new p50 / old p50 − 1 > `fail_on_regression_pct` / 100 AND the 95 % interval of
  that ratio lies entirely above 1.0. The interval is a percentile bootstrap of the ratio
  of medians from both runs' raw samples (each side resampled independently); without
  samples, a normal interval on the log ratio from each side's cv (the standard error of
  a median, 1.2533·cv/√n, or cv itself where n is unknown). Without any spread, the point
  estimate decides, and the result says so. Latencies measured on different CPUs (model,
  core count or ISA) are not comparable: listed, never failed on.
* accuracy: old − new > `max_accuracy_drop` points (point estimate). The difference's
  interval treats the two evaluations as independent samples: half-widths combined in
  quadrature (conservative when both runs used the same samples, which would allow a
  paired test); it is shown, and says whether the change is beyond noise.

A report's side is its pick's (or baseline's) full latency measurement — p50, spread and
raw samples from one measurement — not the final rounds' p50: the interval needs the
samples, and a ratio of one measurement's p50 with another's spread would be neither.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..search.candidate import Candidate, Latency
from . import fields as f

N_BOOT = 2000
CONFIDENCE = 0.95
Z95 = 1.959963984540054
# The asymptotic standard error of a sample median is √(π/2) ≈ 1.2533 times that of the
# mean (normal samples): the best one can do from a recorded std without the samples.
MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2)
MIN_SAMPLES = 5


def parse_percent(text: str | float) -> float:
    """'5%', '5' or 5.0 → 5.0 (percent)."""
    from ..errors import ConfigError

    try:
        value = float(str(text).strip().rstrip("%"))
    except ValueError:
        raise ConfigError(f"not a percentage: {text!r} (e.g. 5%)") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"the regression threshold must be ≥ 0 %, not {text!r}")
    return value


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a run's pick or baseline, or a model card's model."""

    path: str
    kind: str                       # "report" or "model_card"
    which: str                      # "pick", "baseline" or "model card"
    label: str | None
    runtime: str | None
    metric: str
    accuracy: f.Triple
    latency: Latency | None = None
    samples_ms: tuple[float, ...] = ()
    throughput_ips: Mapping[str, Any] | None = None
    size_mb: float | None = None
    peak_rss_mb: float | None = None
    machine: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def p50_ms(self) -> float | None:
        return None if self.latency is None else f.num(self.latency.p50)

    @property
    def best_throughput(self) -> float | None:
        vals = [f.num(v) for v in (self.throughput_ips or {}).values()]
        return max((v for v in vals if v is not None), default=None)


def load_side(path: str | Path) -> Side:
    """A run directory, report.json or model_card.json → its Side."""
    from ..errors import InfertuneError
    from . import load_report, parse_report

    path = Path(path)
    if path.is_file() and path.name != "report.json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InfertuneError(f"cannot read: {exc}", path=path) from None
        if isinstance(data, dict) and "schema_version" not in data:
            if not isinstance(data.get("metrics"), dict):
                raise InfertuneError("neither a report.json nor a model card (metrics "
                                     "expected)", path=path)
            return _card_side(path, data)
    report = parse_report(load_report(path), path)
    entry = report.subject
    if entry is None:
        raise InfertuneError("the report has neither a pick nor a baseline", path=path)
    return _candidate_side(path, entry, "pick" if report.pick else "baseline",
                           f.metric_name(report), f.metric_triple(entry, report),
                           report.machine)


def _candidate_side(path: Path, cand: Candidate, which: str, metric: str,
                    accuracy: f.Triple, machine: Mapping[str, Any]) -> Side:
    full = cand.full
    return Side(path=str(path), kind="report", which=which, label=cand.label,
                runtime=cand.runtime, metric=metric, accuracy=accuracy,
                latency=full.latency if full else None,
                samples_ms=tuple(full.samples_ms) if full else (),
                throughput_ips=full.throughput_ips if full else None, size_mb=cand.size_mb,
                peak_rss_mb=full.peak_rss_mb if full else None, machine=machine,
                versions=machine.get("libraries") or {})


def _card_latency(raw: Any) -> Latency | None:
    if isinstance(raw, Mapping):
        return Latency.from_json(raw) if f.num(raw.get("p50")) is not None else None
    return Latency(p50=raw) if f.num(raw) is not None else None


def _card_side(path: Path, card: dict) -> Side:
    metrics = card["metrics"]
    acc = metrics.get("accuracy")
    metric = "top-1"
    if acc is None:
        acc, metric = (metrics.get("fidelity") or {}).get("top1_agreement"), "top-1 agreement"
    if isinstance(acc, dict) and "top1" in acc:
        acc = acc["top1"]
    triple = f.triple(acc)
    # A card written with fractions (0.9 for 90 %) is shown in percent like a report.
    scale = 100.0 if triple[0] is not None and triple[0] <= 1.0 else 1.0
    machine = card.get("machine") or {}
    return Side(path=str(path), kind="model_card", which="model card",
                label=_recipe_label(card), runtime=card.get("runtime"), metric=metric,
                accuracy=f.scaled(triple, scale),
                latency=_card_latency(metrics.get("latency_ms")),
                samples_ms=tuple(metrics.get("latency_samples_ms") or ()),
                throughput_ips=metrics.get("throughput_ips"),
                size_mb=f.num(metrics.get("size_mb")),
                peak_rss_mb=f.num(metrics.get("peak_rss_mb")), machine=machine,
                versions=card.get("versions") or machine.get("libraries") or {})


def _recipe_label(card: dict) -> str:
    steps = [str(s.get("pass")) for s in card.get("recipe") or [] if isinstance(s, dict)]
    return " + ".join(steps + [str(card.get("runtime"))]) if steps else str(card.get("runtime"))


def median_ratio_ci(old: list[float], new: list[float], *, n_boot: int = N_BOOT,
                    seed: int = 0, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(median(new)/median(old), low, high): percentile bootstrap, each side resampled
    independently with replacement, numpy's default generator seeded with `seed`."""
    import numpy as np

    a, b = np.asarray(old, dtype=float), np.asarray(new, dtype=float)
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, len(a), (n_boot, len(a)))], axis=1)
    med_b = np.median(b[rng.integers(0, len(b), (n_boot, len(b)))], axis=1)
    ratios = med_b / med_a
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(ratios, [tail, 1.0 - tail])
    return float(np.median(b) / np.median(a)), float(lo), float(hi)


def _relative_se(latency: Latency | None) -> float | None:
    if latency is None:
        return None
    cv = f.num(latency.cv)
    if cv is None and f.num(latency.std) is not None and f.num(latency.mean):
        cv = latency.std / latency.mean
    if cv is None:
        return None
    n = f.num(latency.n)
    return MEDIAN_SE_FACTOR * cv / math.sqrt(n) if n and n > 0 else cv


def latency_change(old: Side, new: Side, *, threshold_pct: float, comparable: bool,
                   seed: int = 0) -> dict[str, Any]:
    """Latency verdict of two sides (see the module docstring)."""
    p_old, p_new = old.p50_ms, new.p50_ms
    out: dict[str, Any] = {"old_p50_ms": p_old, "new_p50_ms": p_new, "ratio": None,
                           "ci": None, "method": None, "beyond_noise": None,
                           "comparable": comparable, "regression": False}
    if p_old is None or p_new is None:
        out["method"] = f"{f.NOT_MEASURED}: a p50 is missing"
        return out
    s_old, s_new = list(old.samples_ms), list(new.samples_ms)
    if len(s_old) >= MIN_SAMPLES and len(s_new) >= MIN_SAMPLES:
        ratio, lo, hi = median_ratio_ci(s_old, s_new, seed=seed)
        out["method"] = (f"percentile bootstrap of the ratio of medians ({N_BOOT} resamples, "
                         f"seed {seed}, {len(s_old)} and {len(s_new)} samples)")
    else:
        ratio = p_new / p_old
        se = [_relative_se(side.latency) for side in (old, new)]
        if None in se:
            lo = hi = None
            out["method"] = "point estimate only: no samples and no spread recorded"
        else:
            half = Z95 * math.hypot(*se)
            lo, hi = ratio * math.exp(-half), ratio * math.exp(half)
            out["method"] = "normal interval of the log ratio from each side's cv and n"
    out.update(ratio=ratio, ci=None if lo is None else [lo, hi],
               beyond_noise=None if lo is None else (lo > 1.0 or hi < 1.0))
    slower = ratio - 1.0 > threshold_pct / 100.0
    out["regression"] = bool(comparable and slower and (lo is None or lo > 1.0))
    return out


def accuracy_change(old: tuple, new: tuple, *, max_drop_points: float) -> dict[str, Any]:
    """Accuracy verdict from two (value, low, high) triples in percent."""
    out: dict[str, Any] = {"old": list(old), "new": list(new), "difference": None,
                           "ci": None, "beyond_noise": None, "regression": False,
                           "method": "independent samples: interval half-widths combined "
                                     "in quadrature"}
    if old[0] is None or new[0] is None:
        out["method"] = f"{f.NOT_MEASURED}: an accuracy is missing"
        return out
    diff = new[0] - old[0]
    out["difference"] = diff
    if None not in old and None not in new:
        half = math.hypot((old[2] - old[1]) / 2.0, (new[2] - new[1]) / 2.0)
        out["ci"] = [diff - half, diff + half]
        out["beyond_noise"] = diff - half > 0 or diff + half < 0
    out["regression"] = -diff > max_drop_points
    return out


# (label, path into the fingerprint); a difference in the first three makes latencies
# incomparable: another CPU model, core count or instruction set runs other kernels.
MACHINE_KEYS = (("CPU", ("cpu", "model")), ("physical cores", ("cpu", "physical_cores")),
                ("ISA", ("cpu", "isa")), ("logical cores", ("cpu", "logical_cores")),
                ("memory MB", ("memory_total_mb",)), ("OS", ("os", "platform")),
                ("CPUs allowed", ("threads", "cpus_allowed")), ("GPU", ("gpu",)))
LATENCY_KEYS = ("CPU", "physical cores", "ISA")


def _dig(obj: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def machine_differences(old: dict, new: dict) -> list[dict[str, Any]]:
    """[{"what", "old", "new"}] where the two fingerprints differ (ISA: the flags that
    differ). Fields missing on either side are skipped: unknown is not different."""
    out = []
    for label, keys in MACHINE_KEYS:
        a, b = _dig(old, keys), _dig(new, keys)
        if a is None or b is None or a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            flags = sorted(k for k in set(a) | set(b) if bool(a.get(k)) != bool(b.get(k)))
            if not flags:
                continue
            a = ", ".join(k for k in flags if a.get(k)) or "-"
            b = ", ".join(k for k in flags if b.get(k)) or "-"
        out.append({"what": label, "old": a, "new": b})
    return out


def version_differences(old: dict, new: dict) -> list[dict[str, Any]]:
    return [{"what": name, "old": old.get(name), "new": new.get(name)}
            for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]


def other_metrics(old: Side, new: Side) -> list[dict[str, Any]]:
    """Throughput (best batch), size and peak memory: old, new and change in %."""
    rows = []
    for name, getter in (("throughput img/s", lambda s: s.best_throughput),
                         ("size MB", lambda s: s.size_mb),
                         ("peak RSS MB", lambda s: s.peak_rss_mb)):
        a, b = getter(old), getter(new)
        change = 100.0 * (b / a - 1.0) if a and b is not None else None
        rows.append({"what": name, "old": a, "new": b, "change_pct": change})
    return rows


def compare(a: str | Path, b: str | Path, *, fail_on_regression: str | float = "5%",
            max_accuracy_drop: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Compares run/model card `a` (old) with `b` (new); see the module docstring.

    Returns:
        {"old", "new" (path, kind, which, label, runtime), "latency", "accuracy",
         "other", "machine_differences", "version_differences", "regressions",
         "exit_code" (0 or 1), "thresholds"}.
    """
    from ..errors import ConfigError

    threshold = parse_percent(fail_on_regression)
    if not math.isfinite(max_accuracy_drop) or max_accuracy_drop < 0:
        raise ConfigError(f"--max-accuracy-drop must be ≥ 0 points, not {max_accuracy_drop}")
    old, new = load_side(a), load_side(b)
    machine = machine_differences(old.machine, new.machine)
    comparable = not any(d["what"] in LATENCY_KEYS for d in machine)
    latency = latency_change(old, new, threshold_pct=threshold,
                             comparable=comparable, seed=seed)
    accuracy = accuracy_change(old.accuracy, new.accuracy, max_drop_points=max_accuracy_drop)
    accuracy["metric"] = new.metric if new.metric == old.metric else (
        f"{old.metric} vs {new.metric}")
    regressions = _regressions(latency, accuracy, threshold, max_accuracy_drop)
    return {"old": _describe(old), "new": _describe(new), "latency": latency,
            "accuracy": accuracy, "other": other_metrics(old, new),
            "machine_differences": machine,
            "version_differences": version_differences(dict(old.versions),
                                                       dict(new.versions)),
            "thresholds": {"latency_pct": threshold, "accuracy_points": max_accuracy_drop},
            "regressions": regressions, "exit_code": 1 if regressions else 0}


def _describe(side: Side) -> dict[str, Any]:
    return {"path": side.path, "kind": side.kind, "which": side.which, "label": side.label,
            "runtime": side.runtime}


def _regressions(latency: dict, accuracy: dict, threshold: float, max_drop: float) -> list[str]:
    out = []
    if latency["regression"]:
        out.append(f"latency p50 {100 * (latency['ratio'] - 1):+.1f} % (> {threshold:g} %"
                   + (", interval above 1.0)" if latency["ci"] else ", no spread known)"))
    if accuracy["regression"]:
        out.append(f"{accuracy['metric']} dropped {-accuracy['difference']:.2f} points "
                   f"(> {max_drop:g})")
    return out
