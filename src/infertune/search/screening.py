"""Multi-fidelity screening: a cheap look at every candidate (fidelity on a few samples, a
short latency probe), then the full evaluation only for those that can still matter. Pure.

The rules, as reported in report.json:
"""
from __future__ import annotations

from typing import Any, Sequence

# A probe is a few calls on a shared machine, where single runs swing by ±15% (SPEC): it must
# be slower by more than that before it counts as slower. 10% screened out NNCF INT8 on
# ref-large by noise alone (0.67 ms probe vs 0.60 ms), though it was as fast in a full run.
PROBE_MARGIN = 0.25

RULES = (
    {"name": "over_budget",
     "text": "discarded when even the lower end of the drop's interval on the screening "
             "samples exceeds the budget: it cannot be within budget on more samples either "
             "(its screening numbers stay in the report)"},
    {"name": "dominated",
     "text": f"discarded when a fully measured candidate is faster by more than "
             f"{PROBE_MARGIN:.0%} than its latency probe, no less accurate than the lower end "
             f"of its screening drop, and no larger: it cannot reach the Pareto front"},
    {"name": "order",
     "text": "survivors are fully evaluated fastest probe first, so the dominance rule sees "
             "the strongest rivals early"},
)


def verdict(cand: dict[str, Any], measured: Sequence[dict[str, Any]],
            budget_pts: float) -> tuple[str | None, str | None]:
    """(rule name, reason) when `cand` is screened out, else (None, None).

    `cand` carries its screening drop (`screen_drop`), probe latency (`probe_ms`) and
    `size_mb`; `measured` are fully evaluated records (drop, latency_ms, size_mb).
    """
    drop = cand.get("screen_drop")
    if drop and drop["low"] > budget_pts + 1e-9:
        return "over_budget", (f"screening drop {drop['value']:.2f} points (interval "
                               f"{drop['low']:.2f} to {drop['high']:.2f}, n={drop['n']}) is "
                               f"beyond the {budget_pts:g}-point budget")
    probe = cand.get("probe_ms")
    if probe is None or drop is None:
        return None, None
    for other in measured:
        lat = (other.get("latency_ms") or {}).get("p50")
        odrop = (other.get("drop") or {}).get("value")
        if lat is None or odrop is None or other.get("size_mb") is None:
            continue
        if lat * (1 + PROBE_MARGIN) < probe and odrop <= drop["low"] \
                and other["size_mb"] <= cand["size_mb"]:
            return "dominated", (f"dominated by {other['id']} ({other['label']}): "
                                 f"{lat:.2f} ms vs a {probe:.2f} ms probe, drop "
                                 f"{odrop:.2f} ≤ {drop['low']:.2f}, "
                                 f"{other['size_mb']:.2f} ≤ {cand['size_mb']:.2f} MB")
    return None, None
