"""The figures of a detector run's report, drawn from the files the run stored
(docs/run-format.md): precision–recall curves of the original model, the pick and the other
fully evaluated candidates (tasks/detection/curves.py), and example images with the
original model's boxes beside the pick's (tasks/detection/examples.py).

The truth is the one the search scored against: the data's boxes (data/eval_truth.npz), or
without boxes the original model's own detections above its score threshold (fidelity).
Each candidate's detections are its candidates/ID/eval_detections.npz. What is missing (a
run directory copied without data/ or candidates/) becomes a one-line note in the report,
never a failed report.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..search.candidate import Candidate
from ..search.rundata import DETECTION_SPEC, TRUTH
from ..tasks.detection.compare import pseudo_labels
from ..tasks.detection.curves import pr_curves
from ..tasks.detection.examples import (InputPixels, differing_images, disagreement,
                                        side_by_side)
from ..tasks.detection.heads import DetectionSpec
from ..tasks.detection.records import DetectionSample, Detections
from ..tasks.detection.store import load_detections, load_samples
from . import plots
from .run_report import RunReport

EXAMPLES = 4
MAX_CURVES = 6     # more lines than this stop being legible in one panel
EVAL_DETECTIONS = "eval_detections.npz"   # search/worker.py's NAME_detections.npz, "eval"


@dataclass(frozen=True)
class ExampleImage:
    """One evaluation image drawn twice (PNG), as the report shows it."""

    name: str
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class DetectionFigures:
    """What the detection section shows beyond its table.

    Attributes:
        pr_chart: a chart dict (plots.draw_chart), None when not drawn.
        examples: the example images. examples_note: how they were chosen.
        notes: one line per figure that could not be drawn, and why.
    """

    pr_chart: dict[str, Any] | None = None
    examples: tuple[ExampleImage, ...] = ()
    examples_note: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Stored:
    """What the run stored for its detection figures."""

    truth: list[DetectionSample]
    detections: dict[str, list[Detections]]
    names: list[str]
    classes: int
    pixels: InputPixels
    fidelity: bool
    threshold: float


def _evaluated(report: RunReport) -> list[Candidate]:
    return [c for c in report.candidates if c.full is not None and c.full.detection is not None]


def _need(path: Path, run_dir: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path.relative_to(run_dir).as_posix()} is missing")
    return path


def _read(run_dir: Path, base: Candidate, rows: list[Candidate]) -> _Stored:
    """Raises FileNotFoundError when the truth or the original model's detections are
    missing; a missing other candidate is left out."""
    data = run_dir / "data"
    saved = json.loads(_need(data / DETECTION_SPEC, run_dir).read_text(encoding="utf-8"))
    base_dets = load_detections(_need(run_dir / "candidates" / base.id / EVAL_DETECTIONS,
                                      run_dir))
    det = base.full.detection
    fidelity = det.basis != "labels"
    truth = (pseudo_labels(base_dets, det.score_threshold) if fidelity
             else load_samples(_need(data / TRUTH, run_dir)))
    found = {base.id: base_dets}
    for c in rows:
        path = run_dir / "candidates" / c.id / EVAL_DETECTIONS
        if c.id != base.id and path.exists():
            found[c.id] = load_detections(path)
    return _Stored(truth, found, list(saved.get("names") or []),
                   DetectionSpec.from_dict(saved["spec"]).classes,
                   InputPixels.from_dict(saved.get("eval_inputs")), fidelity,
                   det.score_threshold)


def _curve_order(report: RunReport, stored: _Stored, rows: list[Candidate]
                 ) -> list[tuple[Candidate, str]]:
    """(candidate, role): the original, the pick, then the others in the order tried."""
    order = [(report.baseline, "baseline")]
    if report.pick is not None and report.pick.id != report.baseline_id:
        order.append((report.pick, "pick"))
    order += [(c, "other") for c in rows if c.id not in (report.baseline_id, report.pick_id)]
    return [(c, role) for c, role in order if c.id in stored.detections]


def _pr_chart(report: RunReport, stored: _Stored, rows: list[Candidate]) -> dict | None:
    order = _curve_order(report, stored, rows)
    shown, left_out = order[:MAX_CURVES], len(order) - MAX_CURVES
    missing = len(rows) - len(order)

    def make():
        series = []
        for cand, role in shown:
            dets = stored.detections[cand.id]
            n = min(len(dets), len(stored.truth))
            series.append({"label": cand.label or cand.id, "role": role,
                           "curves": pr_curves(stored.truth[:n], dets[:n], stored.classes)})
        return plots.pr_svg(series, "fidelity precision" if stored.fidelity else "precision")

    on = ("the original model's own detections above its score threshold "
          f"({stored.threshold:g}): fidelity, agreement with the float model, not accuracy"
          if stored.fidelity else "the data's boxes")
    caption = (f"On {on}; {len(stored.truth)} evaluation images. COCO's interpolated "
               "precision (the best precision at that recall or beyond) at each recall, "
               "averaged over the classes with boxes; the figure beside each name is the "
               "area under its curve, the AP50 or mAP of the table above. Black: the "
               "original model; orange: the pick; dashed: other fully evaluated candidates."
               + (f" {left_out} more left out for legibility." if left_out > 0 else "")
               + (f" {missing} without stored detections." if missing > 0 else ""))
    title = ("Fidelity precision–recall curves" if stored.fidelity
             else "Precision–recall curves")
    return plots.draw_chart("pr_curves", title, caption, make)


def _examples(run_dir: Path, report: RunReport, stored: _Stored
              ) -> tuple[tuple[ExampleImage, ...], str | None, str | None]:
    """(images, how they were chosen, or a note saying why there are none)."""
    base, pick = report.baseline, report.pick
    if pick is None or pick.id == base.id:
        return (), None, "Example images: no pick other than the original model to compare."
    if pick.id not in stored.detections:
        return (), None, (f"Example images: not drawn, candidates/{pick.id}/"
                          f"{EVAL_DETECTIONS} (the pick's detections) is missing.")
    inputs = run_dir / "data" / "eval_x.npy"
    if not inputs.exists():
        return (), None, "Example images: not drawn, data/eval_x.npy is missing."
    x = np.load(inputs, mmap_mode="r")
    ref, cand = stored.detections[base.id], stored.detections[pick.id]
    n = min(len(ref), len(cand), len(x))
    t = stored.threshold
    chosen = differing_images(ref[:n], cand[:n], t, EXAMPLES)
    panels = (f"original model ({base.precision.upper()})", f"pick: {pick.label}")
    images = []
    for rank, i in enumerate(chosen, 1):
        png = side_by_side(np.asarray(x[i]), ref[i].image_hw, stored.pixels,
                           [(panels[0], ref[i]), (panels[1], cand[i])], stored.names, t)
        ident = "" if stored.fidelity else f" (image id {stored.truth[i].image_id})"
        images.append(ExampleImage(
            f"example_{rank}", f"Evaluation image {i + 1} of {n}{ident}",
            f"boxes above {t:g}: {len(ref[i].above(t))} from the original model, "
            f"{len(cand[i].above(t))} from the pick, {disagreement(ref[i], cand[i], t)} of "
            "them without a box of the same class at IoU ≥ 0.5 in the other model.", png))
    how = (f"The {len(chosen)} of {n} evaluation images where the pick's boxes differ most "
           f"from the original model's: boxes above the score threshold ({t:g}) with no box "
           "of the same class at IoU ≥ 0.5 in the other model, most first (ties: more boxes, "
           f"then image order). Left: the original model; right: the pick ({pick.label}). "
           "Each image as the network saw it (letterbox padding cut away); one colour per "
           "class.")
    return tuple(images), how, None


def detection_figures(run_dir: str | Path, report: RunReport) -> DetectionFigures | None:
    """The figures of a detector run from RUN_DIR's files; None for a classifier run."""
    rows = _evaluated(report)
    if not rows:
        return None
    base = report.baseline
    if base is None or base.full is None or base.full.detection is None:
        return DetectionFigures(notes=("PR curves and example images: not drawn, the original "
                                       "model has no full detection evaluation.",))
    run_dir = Path(run_dir)
    # Like a chart, a run directory that cannot be read costs its figures, not the report.
    try:
        stored = _read(run_dir, base, rows)
    except FileNotFoundError as exc:
        return DetectionFigures(notes=(f"PR curves and example images: not drawn, {exc} "
                                       f"in {run_dir}.",))
    except Exception as exc:  # noqa: BLE001 - a damaged file (truncated .npz, bad JSON)
        return DetectionFigures(notes=(f"PR curves and example images: not drawn, the run's "
                                       f"files in {run_dir} could not be read "
                                       f"({type(exc).__name__}: {exc}).",))
    chart = _pr_chart(report, stored, rows)
    # Drawing the examples must not cost the report: a failure is its note.
    try:
        images, how, note = _examples(run_dir, report, stored)
    except Exception as exc:  # noqa: BLE001 - any drawing failure, reported in the page
        images, how, note = (), None, (f"Example images: could not be drawn "
                                       f"({type(exc).__name__}: {exc}).")
    return DetectionFigures(chart, images, how, (note,) if note else ())
