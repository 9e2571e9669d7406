"""mixed_precision's rank=cost: which layers to keep float per millisecond they cost.

Keeping a layer float buys accuracy and costs time. Per quantizable layer:
- benefit = 10**(-sqnr_db/10): the output noise power relative to the signal when that
  layer alone is quantized (`sensitivity.analyze`), i.e. the noise keeping it float removes;
- cost_ms = float_ms - int8_ms: the layer's measured time in the float model minus its time
  in the fully quantized model (same int8_static options), on the runtime the INT8
  candidate runs on (`runtimes.layer_time`; which profile rows are a layer's:
  `_profile_match`). It can be <= 0: a depthwise conv or a 3-channel first conv is often
  no faster in INT8, and a layer ORT leaves as a float Conv on dequantized weights is slower.

Order (`rank_by_cost`, pure): the matched layers by benefit / max(cost_ms, floor), highest
first (equal ratios: the larger benefit first); last the layers that a profile could not
match, by sensitivity. The floor stands for timer noise: a layer costing at most the floor
is "free" (its group), but it is still ranked by what it buys. A first version put every
free layer first; on EfficientNet-Lite0 on OpenVINO that kept 14 depthwise layers float at
30–37 dB SQNR ahead of the stem and the first depthwise conv (9–10 dB, +0.02 ms each, just
above the floor), which carry most of the output noise.
"""
from __future__ import annotations

import math
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from ..types import ModelHandle
from .base import PassContext

# The floor: a layer costing at most this share of the INT8 model's summed layer time counts
# as free. Per-layer medians of a few ms models still move by ~0.1-0.5% of the total from
# profile to profile on a shared CPU; below 0.5% a "saving" is not distinguishable from
# noise, so it must not turn a layer into a bargain (benefit / tiny cost).
FREE_FLOOR_SHARE = 0.005
# Timing noise: each model is profiled COST_REPEATS times (COST_RUNS runs each, after the
# profiler's warm-up) and each row's median over the repeats is used: a median of 3 drops
# one disturbed profile (another process on the core), which a single long run would
# average in; 20 runs keep a small model's rows above the timer's microsecond resolution.
COST_RUNS = 20
COST_REPEATS = 3

FREE, RATIO, UNMATCHED = "free", "benefit/cost", "unmatched"


@dataclass(frozen=True)
class LayerCost:
    """One layer's numbers: sensitivity (SQNR in dB with it alone quantized; None: not
    measured) and its time in the float and in the INT8 model (None: not matched)."""

    layer: str
    sqnr_db: float | None
    float_ms: float | None
    int8_ms: float | None

    @property
    def matched(self) -> bool:
        return self.float_ms is not None and self.int8_ms is not None

    @property
    def cost_ms(self) -> float | None:
        return self.float_ms - self.int8_ms if self.matched else None

    @property
    def benefit(self) -> float:
        """Noise-to-signal power the layer alone causes quantized (0 when not measured)."""
        if self.sqnr_db is None:
            return 0.0
        if math.isinf(self.sqnr_db):
            return 0.0 if self.sqnr_db > 0 else math.inf
        return 10 ** (-self.sqnr_db / 10)

    def group(self, floor_ms: float) -> str:
        if not self.matched:
            return UNMATCHED
        return FREE if self.cost_ms <= floor_ms else RATIO


def value_per_ms(layer: LayerCost, floor_ms: float) -> float:
    """benefit / max(cost_ms, floor_ms); infinite where that cost is not positive (a floor
    of 0 and a layer no faster in INT8). Only for matched layers."""
    cost = max(layer.cost_ms, floor_ms)
    return math.inf if cost <= 0 else layer.benefit / cost


def rank_by_cost(layers: Sequence[LayerCost], floor_ms: float) -> list[LayerCost]:
    """Keep-float order: the matched layers by benefit / max(cost_ms, floor_ms) descending
    (equal: the larger benefit first), then the unmatched ones by SQNR ascending (None
    last). Remaining ties keep the input order."""
    matched = [l for l in layers if l.matched]
    rest = [l for l in layers if not l.matched]
    return (sorted(matched, key=lambda l: (-value_per_ms(l, floor_ms), -l.benefit))
            + sorted(rest, key=lambda l: math.inf if l.sqnr_db is None else l.sqnr_db))


def ranked_rows(layers: Sequence[LayerCost], floor_ms: float) -> list[dict[str, Any]]:
    """rank_by_cost as JSON rows for the pass details."""
    def row(i: int, l: LayerCost) -> dict[str, Any]:
        cost = l.cost_ms
        return {"rank": i + 1, **asdict(l), "cost_ms": None if cost is None else round(cost, 6),
                "benefit": l.benefit, "group": l.group(floor_ms)}

    return [row(i, l) for i, l in enumerate(rank_by_cost(layers, floor_ms))]


@dataclass(frozen=True)
class LayerTimes:
    """Measured per-layer ms of the float and the INT8 model on one runtime."""

    runtime: str
    float_ms: dict[str, float]
    int8_ms: dict[str, float]
    float_total_ms: float
    int8_total_ms: float
    float_unattributed_ms: float
    int8_unattributed_ms: float
    method: str

    @property
    def floor_ms(self) -> float:
        return FREE_FLOOR_SHARE * self.int8_total_ms

    def summary(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "method": self.method, "floor_ms": self.floor_ms,
                "floor_share": FREE_FLOOR_SHARE, "runs": COST_RUNS, "repeats": COST_REPEATS,
                "float_total_ms": self.float_total_ms, "int8_total_ms": self.int8_total_ms,
                "float_unattributed_ms": self.float_unattributed_ms,
                "int8_unattributed_ms": self.int8_unattributed_ms}


def median_rows(runtime: str, artifact: Path, chw, threads: int | None) -> dict[str, Any]:
    """COST_REPEATS profiles of `artifact`, each row's ms the median over them."""
    from ..runtimes.layer_time import layer_times

    runs = [layer_times(runtime, artifact, chw, threads=threads, runs=COST_RUNS)
            for _ in range(COST_REPEATS)]
    ms: dict[str, list[float]] = {}
    for run in runs:
        for r in run["layers"]:
            ms.setdefault(r["name"], []).append(r["ms"])
    rows = [{**r, "ms": statistics.median(ms[r["name"]])} for r in runs[0]["layers"]]
    return {**runs[0], "layers": rows, "total_ms": round(sum(r["ms"] for r in rows), 6)}


def measure(source: ModelHandle, prepped: Path, int8: ModelHandle, runtime: str,
            layers: Sequence[str], ctx: PassContext) -> LayerTimes:
    """Times the pre-processed float model and the INT8 model on `runtime`, per layer."""
    from ..runtimes import RUNTIMES
    from . import _profile_match as pm

    target = RUNTIMES.get(runtime)
    float_handle = ModelHandle(format="onnx", path=str(prepped), input_spec=source.input_spec,
                               name=source.name, source=source.source)
    chw = source.input_spec.chw
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="layer-cost-", dir=ctx.workdir) as tmp:
        built = {kind: target.build(h, Path(tmp) / kind, threads=ctx.threads)
                 for kind, h in (("float", float_handle), ("int8", int8))}
        prof = {kind: median_rows(runtime, path, chw, ctx.threads) for kind, path in built.items()}
        f, q = _attribute(runtime, prof, built, pm.Graph.load(prepped), layers)
    return LayerTimes(runtime, f.layer_ms, q.layer_ms, prof["float"]["total_ms"],
                      prof["int8"]["total_ms"], f.unattributed_ms, q.unattributed_ms,
                      prof["float"]["method"])


def _attribute(runtime: str, prof: dict[str, Any], built: dict[str, Path], graph,
               layers: Sequence[str]):
    """(float, int8) `_profile_match.Matched` of the two profiles; `graph`: the float ONNX."""
    from . import _profile_match as pm

    if runtime == "openvino":
        return tuple(pm.ov_layer_ms(prof[k]["layers"], pm.ov_layer_ops(built[k], graph, layers))
                     for k in ("float", "int8"))
    f = pm.ort_float_ms(prof["float"]["layers"], graph, layers)
    return f, pm.ort_int8_ms(prof["int8"]["layers"], pm.Graph.load(built["int8"]), layers,
                             f.fused)


def cost_ranking(source: ModelHandle, config: Any, ctx: PassContext,
                 sensitivity: Sequence[dict[str, Any]], layers: Sequence[str]) -> dict[str, Any]:
    """The rank=cost ranking of mixed_precision `config` (JSON): {"layers": ranked_rows,
    "unmatched", "note", measurement summary}, or {"unavailable": why} when the INT8 model
    cannot be built or timed on config.cost_runtime."""
    from ..errors import InfertuneError
    from . import _ort_quant as q

    prepped, _ = q.prepare(source, ctx)
    try:
        times = _measured(source, prepped, config, layers, ctx)
    except _NotQuantized as exc:
        return {"unavailable": f"the fully quantized model: {exc}"}
    except InfertuneError as exc:
        return {"unavailable": f"per-layer timing on {config.cost_runtime}: {exc}"}
    sqnr = {r["layer"]: r.get("sqnr_db") for r in sensitivity}
    costs = [LayerCost(l, sqnr.get(l), _ms(times.float_ms, l), _ms(times.int8_ms, l))
             for l in layers]
    unmatched = [c.layer for c in costs if not c.matched]
    return {**times.summary(), "layers": ranked_rows(costs, times.floor_ms),
            "unmatched": unmatched,
            "note": (f"{len(unmatched)} layer(s) not matched in both profiles, ranked after "
                     "the matched ones by sensitivity") if unmatched else None}


class _NotQuantized(Exception):
    """The fully quantized model could not be built (its reason)."""


def _measured(source: ModelHandle, prepped: Path, config: Any, layers: Sequence[str],
              ctx: PassContext) -> LayerTimes:
    """`measure` of the fully quantized model, once per run for the same model, INT8
    options, runtime and threads (`_result_cache`): the K variants of one ranking then
    keep nested layer sets."""
    from . import _result_cache
    from .int8_static import quantize

    def compute() -> dict[str, Any]:
        int8 = quantize(source, config.static(), ctx, [])
        if not int8.applied:
            raise _NotQuantized(int8.reason)
        return asdict(measure(source, prepped, int8.model, config.cost_runtime, layers, ctx))

    parts = {"model": prepped.stem, "data": _result_cache.data_digest(ctx.calibration.x),
             "int8": asdict(config.static()), "runtime": config.cost_runtime,
             "threads": ctx.threads, "layers": list(layers)}
    found = _result_cache.cached(ctx, "layer-cost", parts, compute)
    found.pop("cached", None)
    return LayerTimes(**found)


def _ms(found: dict[str, float], layer: str) -> float | None:
    return round(found[layer], 6) if layer in found else None


def most_valuable(rows: Sequence[dict[str, Any]], k: int) -> list[dict[str, str]]:
    """The first k rows of a cost ranking as mixed_precision's kept list, with reasons."""
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f} ms"

    def db(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f} dB"

    return [{"layer": r["layer"],
             "reason": f"cost rank {r['rank']} of {len(rows)} ({r['group']}): output SQNR "
                       f"{db(r['sqnr_db'])} with it alone quantized; float {ms(r['float_ms'])}"
                       f" vs int8 {ms(r['int8_ms'])}"}
            for r in rows[:k]]
