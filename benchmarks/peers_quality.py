"""Data and quality scoring for benchmarks/peers.py: each model on its own built-in set.

Each case takes its data from the model's built-in set (`resolve_data("auto", handle)`,
i.e. the zoo entry's `default_data`) with the model's own preprocessing preset:

- sets with disjoint parts (`sample`, `clutter`): calibration from `:train`, evaluation
  from `:val` (all of it for a trained model with labels, as the earlier peers runs did, or
  `--eval-n` samples where that is more: `clutter:val` then renders more scenes of each
  digit, clustered by digit, as optimize's `--eval-size` does; the first `--eval-n`
  otherwise);
- sets without parts (`photos`): `photos:<calibration + eval_n>` views, calibration = the
  first `--calibration` views, evaluation = the next `--eval-n`. The view order is fixed
  (infertune.data.photo_views), so every pipeline and every run sees the same slices.

Quality, computed in this process by each pipeline's own runtime session:
- labelled data on a trained model: top-1 with its Wilson interval and, against PyTorch
  eager FP32 on the same samples, the paired top-1 drop with Tango's interval
  (`infertune.metrics.budget.top1_drop`, adjusted for clusters by their design effect as
  optimize adjusts its own);
- otherwise (unlabelled photos, or seeded random weights): top-1 agreement with eager FP32
  (Wilson) and mean cosine of the outputs.
A fidelity block (agreement, cosine, SQNR) is recorded for every row in both cases.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE = "torch eager fp32"


@dataclass(frozen=True)
class CaseData:
    """One case's calibration and evaluation inputs, and how they were drawn.

    Attributes:
        calib: calibration images (N×C×H×W float32), the same for every quantizer.
        val_x: evaluation images.
        val_y: their labels, or None when the quality is fidelity to eager FP32.
        calib_desc / val_desc: what the slices are, for the table notes.
        spec: the model's built-in data set.
        val_groups: the cluster of each evaluation image (several scenes of one digit), or
            None when they are independent.
    """

    calib: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray | None
    calib_desc: str
    val_desc: str
    spec: str
    val_groups: np.ndarray | None = None

    @property
    def labelled(self) -> bool:
        return self.val_y is not None


def case_data(handle, calibration: int, eval_n: int) -> CaseData:
    """The case's data from the model's own built-in set (module docstring)."""
    from infertune.data import load_dataset
    from infertune.search.rundata import SETS_WITH_PARTS, resolve_data

    spec = resolve_data("auto", handle)
    common = {"input_shape": handle.input_spec.chw,
              "preprocess": handle.meta.get("preprocess", "darknet")}
    trained = handle.meta.get("weights") != "random"
    if spec in SETS_WITH_PARTS:
        calib = load_dataset(f"{spec}:train", limit=calibration, **common)
        val = load_dataset(f"{spec}:val", limit=None if trained else eval_n, **common)
        if trained and eval_n > len(val):
            val = load_dataset(f"{spec}:val", limit=eval_n, **common)
        labels = val.y if trained and val.y is not None else None
        clusters = "" if val.groups is None else \
            f" ({len(np.unique(val.groups))} clusters: the scenes of one digit)"
        return CaseData(calib.x, val.x, labels, f"{len(calib)} {spec}:train images",
                        f"{len(val)} {spec}:val images{clusters}", spec, val.groups)
    views = load_dataset(f"{spec}:{calibration + eval_n}", **common)
    labels = views.y[calibration:] if trained and views.y is not None else None
    return CaseData(views.x[:calibration], views.x[calibration:calibration + eval_n], labels,
                    f"{spec} views 0–{calibration - 1}",
                    f"{spec} views {calibration}–{calibration + eval_n - 1}", spec)


def outputs(row: dict, x: np.ndarray, threads: int, batch: int) -> np.ndarray:
    """The pipeline's outputs on `x`, computed in this process by its runtime's session."""
    from infertune.measure.session import SessionFactory

    # LATENCY hint for OpenVINO: its THROUGHPUT queue's Python callbacks can deadlock against
    # close() in this process (benchmarks/passes.py found it).
    options = {**row.get("options", {}), "batch": batch, "hint": "LATENCY"}
    session = SessionFactory(row["runtime"], row["artifact"], options=options).open(
        threads=threads)
    try:
        outs = [np.asarray(session.run(np.ascontiguousarray(x[i:i + batch]))[0])
                for i in range(0, len(x), batch)]
    finally:
        session.close()
    return np.concatenate(outs).reshape(len(x), -1)


def top1_block(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Top-1 with its Wilson 95% interval."""
    from infertune.metrics.intervals import wilson_interval

    correct = logits.argmax(axis=1) == labels
    n, k = len(labels), int(correct.sum())
    return {"top1": k / n, "top1_ci": list(wilson_interval(k, n)), "n": n,
            "correct": correct}


def paired_drop(ref_correct: np.ndarray, correct: np.ndarray,
                groups: np.ndarray | None = None) -> dict:
    """Eager FP32's top-1 minus this row's, in points, with Tango's paired 95% interval
    (Rao–Scott adjusted when the samples are clustered by `groups`)."""
    from infertune.metrics.budget import paired_top1_drop

    drop = paired_top1_drop(ref_correct, correct, groups=groups)
    return {"points": drop.value, "ci": [drop.low, drop.high], "n10": drop.n10,
            "n01": drop.n01, "design_effect": drop.design_effect, "method": drop.method}


def score(rows: list[dict], data: CaseData, threads: int, batch: int = 10) -> dict:
    """Fills each built row's `accuracy`/`drop_vs_eager` (labelled) and `fidelity`."""
    from infertune.metrics import fidelity

    reference = ref_correct = None
    for row in sorted(rows, key=lambda r: r["pipeline"] != REFERENCE):  # the reference first
        if not row.get("artifact"):
            continue
        try:
            logits = outputs(row, data.val_x, threads, batch)
        except Exception as exc:
            row["accuracy_reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        # A quantizer that rounds every output to 0 (ORT's default QDQ Softmax, fixed [0, 1] range,
        # on 1000 classes) is named as such in the notes, not left as a mysterious 0%.
        row["outputs_all_zero"] = not bool(np.any(logits))
        if data.labelled:
            block = top1_block(logits, data.val_y)
            correct = block.pop("correct")
            row["accuracy"] = block
            if row["pipeline"] == REFERENCE:
                ref_correct = correct
            elif ref_correct is not None:
                row["drop_vs_eager"] = paired_drop(ref_correct, correct, data.val_groups)
        if row["pipeline"] == REFERENCE:
            reference = logits
        if reference is not None:
            fid = fidelity(reference, logits)
            row["fidelity"] = {k: fid[k] for k in ("n", "top1_agreement", "top1_agreement_ci",
                                                  "cosine", "cosine_min", "sqnr_db")}
    return {"data": data.spec, "evaluation": data.val_desc, "n": len(data.val_x),
            "labelled": data.labelled, "reference": REFERENCE}
