"""Plain-text rendering of a `compare` result for the terminal (stdout)."""
from __future__ import annotations

from typing import Any


def _num(value: Any, fmt: str = "{:.3g}") -> str:
    return "not measured" if value is None else fmt.format(value)


def _latency_lines(lat: dict) -> list[str]:
    lines = [f"latency p50: {_num(lat['old_p50_ms'])} ms → {_num(lat['new_p50_ms'])} ms"]
    if lat["ratio"] is not None:
        ci = (f" [95% CI {lat['ci'][0]:.3f}, {lat['ci'][1]:.3f}]" if lat["ci"]
              else " (no interval)")
        noise = {True: "beyond noise", False: "within noise", None: "noise unknown"}[
            lat["beyond_noise"]]
        lines.append(f"  ratio new/old {lat['ratio']:.3f}{ci}, {noise}")
    lines.append(f"  method: {lat['method']}")
    if not lat["comparable"]:
        lines.append("  NOT COMPARABLE: measured on different CPUs (see machine differences)")
    return lines


def _accuracy_lines(acc: dict) -> list[str]:
    def side(t: list) -> str:
        if t[0] is None:
            return "not measured"
        return f"{t[0]:.2f}" + (f" [{t[1]:.2f}, {t[2]:.2f}]" if None not in t else "")

    lines = [f"{acc.get('metric', 'accuracy')} %: {side(acc['old'])} → {side(acc['new'])}"]
    if acc["difference"] is not None:
        ci = f" [{acc['ci'][0]:+.2f}, {acc['ci'][1]:+.2f}]" if acc["ci"] else ""
        lines.append(f"  difference {acc['difference']:+.2f} points{ci}")
    lines.append(f"  method: {acc['method']}")
    return lines


def render(result: dict) -> str:
    """The comparison as lines of text, verdict last."""
    old, new = result["old"], result["new"]
    lines = [f"old: {old['path']} ({old['which']}: {old['label']})",
             f"new: {new['path']} ({new['which']}: {new['label']})", ""]
    lines += _latency_lines(result["latency"]) + _accuracy_lines(result["accuracy"])
    for row in result["other"]:
        change = "" if row["change_pct"] is None else f" ({row['change_pct']:+.1f} %)"
        lines.append(f"{row['what']}: {_num(row['old'])} → {_num(row['new'])}{change}")
    for title, key in (("machine differences", "machine_differences"),
                       ("version differences", "version_differences")):
        rows = result[key]
        lines.append(f"{title}: " + ("none" if not rows else ""))
        lines += [f"  {r['what']}: {r['old']} → {r['new']}" for r in rows]
    verdict = ("REGRESSION: " + "; ".join(result["regressions"]) if result["regressions"]
               else "no regression beyond the thresholds")
    return "\n".join(lines + ["", verdict]) + "\n"
