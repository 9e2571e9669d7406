"""The detection section of a run's report: per candidate, mAP / AP50 / AP75 with their
bootstrap intervals (on the data's boxes, or — with no boxes — on the original model's own
detections, named fidelity mAP), its fidelity mAP against the original model, the paired
mAP drop the budget judged, and the score shift (INT8 compresses confidences: mAP can hold
while a deployed threshold starts to drop boxes); then the precision–recall curves and the
example images (`detection_figures`: drawn from the run's files), or the line saying why
they are missing. Pure: blocks from a RunReport and the figures already drawn."""
from __future__ import annotations

from typing import Any

from ..search.candidate import Candidate, Estimate
from .detection_figures import DetectionFigures
from .run_report import RunReport

Block = tuple[Any, ...]


def _est(e: Estimate | None) -> str:
    if e is None:
        return "—"
    if e.low is None or e.high is None:
        return f"{e.value:.2f}"
    return f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"


def _drop(c: Candidate) -> str:
    d = c.drop
    return "—" if d is None else f"{d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"


def _shift(c: Candidate) -> str:
    s = c.full.detection.score_shift
    change, lost = s.get("median_change"), s.get("lost_at_threshold")
    if change is None:
        return "no matched boxes"
    return (f"median {change:+.3f}; {lost} of {s.get('matched')} matched boxes fall below "
            f"{s.get('threshold'):g}")


def _mark(report: RunReport, c: Candidate) -> str:
    return "★ " if c.id == report.pick_id else ("baseline " if c.id == report.baseline_id else "")


def figure_blocks(figures: DetectionFigures | None) -> list[Block]:
    """The PR chart, the example images with how they were chosen, the notes."""
    if figures is None:
        return []
    blocks: list[Block] = [("chart", figures.pr_chart)] if figures.pr_chart else []
    if figures.examples:
        blocks += [("h3", "Example images: original model and pick"),
                   ("p", figures.examples_note)]
        blocks += [("image", example) for example in figures.examples]
    return blocks + [("p", note) for note in figures.notes]


def detection_blocks(report: RunReport, figures: DetectionFigures | None = None
                     ) -> list[Block]:
    """The section; nothing for a run on a classifier."""
    rows = [c for c in report.candidates if c.full is not None and c.full.detection is not None]
    if not rows:
        return []
    basis = rows[0].full.detection.basis
    name = "mAP" if basis == "labels" else "fidelity mAP"
    on = ("the data's boxes" if basis == "labels" else
          "the original model's own detections above its score threshold (no boxes in the "
          "data: agreement with the float model, not accuracy)")
    head = ["candidate", "precision", f"{name}@[.5:.95]", "AP50", "AP75",
            "fidelity mAP (vs original)", "drop (points)", "within budget", "score shift"]
    body = [[f"{_mark(report, c)}{c.label}", c.precision, _est(c.full.detection.map),
             _est(c.full.detection.ap50), _est(c.full.detection.ap75),
             _est(c.full.detection.fidelity_map), _drop(c),
             {True: "yes", False: "no", None: "—"}[c.decision.within_budget], _shift(c)]
            for c in rows]
    first = rows[0].full.detection
    return [("h2", "Detection"),
            ("p", f"{name} on {on}, in points, on {first.images} images; each value with its "
                  f"{report.budget.get('confidence', 0.95):.0%} percentile bootstrap interval "
                  "over images. The drop is paired (both models on the same resampled images) "
                  "and is what the budget judged: within budget when its upper end is at most "
                  f"{report.budget.get('budget_points')} points. Score shift: how the "
                  "confidences of boxes both models found moved, and how many cross the "
                  f"deployed threshold ({first.score_threshold:g})."),
            ("table", head, body)] + figure_blocks(figures)
