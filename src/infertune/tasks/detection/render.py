"""Terminal rendering of a detector's `infertune eval` result (rich)."""
from __future__ import annotations

from typing import Any


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _ci(interval: dict[str, Any], sign: bool = False) -> str:
    fmt = "{:+.1f}" if sign else "{:.1f}"
    value, low, high = (fmt.format(100 * interval[k]) for k in ("value", "low", "high"))
    return (f"{value} [{low}, {high}] ({100 * interval['confidence']:.0f}% bootstrap "
            f"over images, {interval['resamples']} resamples)")


def detection_eval(result: dict[str, Any], console) -> None:
    from rich.table import Table

    say = lambda text: console.print(text, highlight=False, markup=False)  # noqa: E731
    data = result["data"]
    say(f"{result['model']['name']} on {data['source']} ({data['format']}, {data['images']} "
        f"images, {data['boxes']} boxes)")
    say(f"runtime {result['runtime']} · {result['threads']} thread(s) · batch "
        f"{result['batch_size']} · network {result['inference_s']:.2f} s · letterbox · "
        f"boxes kept above {result['map_score_threshold']} for mAP")
    acc = result.get("accuracy")
    if acc:
        say(f"mAP@[.5:.95] {_ci(acc['map_ci'])} · AP50 {_pts(acc['ap50'])} · "
            f"AP75 {_pts(acc['ap75'])}")
        say(f"at score ≥ {acc['score_threshold']}: precision {_pts(acc['precision'])} · recall "
            f"{_pts(acc['recall'])} · F1 {_pts(acc['f1'])} (IoU .5)")
        table = Table(title="AP@[.5:.95] per class")
        table.add_column("class")
        table.add_column("AP", justify="right")
        for name, ap in sorted(acc["per_class_ap"].items(), key=lambda kv: -kv[1]):
            table.add_row(name, _pts(ap))
        console.print(table)
    if "comparison" in result:
        say(f"paired mAP drop vs {result['reference']['name']}: "
            f"{_ci(result['comparison']['map_drop'], sign=True)} points")
    if "fidelity" in result:
        fid, shift = result["fidelity"]["fidelity_map"], result["fidelity"]["score_shift"]
        say(f"fidelity mAP (against {result['reference']['name']}'s own detections above "
            f"{result['score_threshold']}, not accuracy): {_ci(fid)}")
        if shift["matched"]:
            say(f"score shift on {shift['matched']} matched boxes: median "
                f"{shift['reference_quantiles'][2]:.3f} → {shift['candidate_quantiles'][2]:.3f} "
                f"(median change {shift['median_change']:+.3f}); above {shift['threshold']}: "
                f"{shift['reference_above']} → {shift['candidate_above']} boxes, "
                f"{shift['lost_at_threshold']} matched boxes fall below it")
