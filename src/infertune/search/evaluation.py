"""Turns a candidate's logits into its accuracy, fidelity and drop against the baseline.
Pure numpy over arrays the workers saved."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics.classification import classification_report
from ..metrics.fidelity import fidelity
from . import select
from .candidate import Drop, Fidelity


@dataclass(frozen=True)
class Scores:
    """A candidate's drop, fidelity and (labelled, full evaluation) accuracy; or the reason
    there are none."""

    drop: Drop | None
    fidelity: Fidelity | None = None
    accuracy: dict[str, Any] | None = None
    reason: str | None = None


def scores(base_logits: np.ndarray, logits: np.ndarray, labels: np.ndarray | None,
           metric: str, confidence: float, seed: int, *, full: bool) -> Scores:
    """The drop, fidelity and accuracy of `logits` vs the baseline's on the same samples."""
    n = min(len(base_logits), len(logits))
    base, cand = base_logits[:n], logits[:n]
    if not np.all(np.isfinite(cand)):
        return Scores(None, reason="the candidate produced non-finite outputs (inf/NaN)")
    fid = fidelity(base, cand, confidence=confidence)
    fid = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in fid.items()}
    fid["top1_agreement_ci"] = tuple(fid["top1_agreement_ci"]) if fid.get("top1_agreement_ci") \
        else None
    if metric == "top1":
        drop = select.drop_top1(base, cand, labels[:n], confidence=confidence)
    else:
        drop = select.drop_agreement(base, cand, confidence=confidence)
    acc = accuracy(cand, labels[:n], confidence) if full and labels is not None else None
    return Scores(drop, Fidelity.from_json(fid), acc)


def accuracy(logits: np.ndarray, labels: np.ndarray, confidence: float) -> dict[str, Any]:
    """Top-1/top-5 with Wilson intervals, macro precision/recall/F1 (metrics.classification)."""
    rep = classification_report(logits, labels, confidence=confidence, n_boot=200)
    out: dict[str, Any] = {}
    for key in ("top1", "top5"):
        lo, hi = rep[f"{key}_ci"]
        out[key] = {"value": 100 * rep[key], "low": 100 * lo, "high": 100 * hi}
    for key in ("precision", "recall", "f1"):
        lo, hi = rep[f"{key}_macro_ci"]
        out[key] = {"value": 100 * rep[f"{key}_macro"], "low": 100 * lo, "high": 100 * hi,
                    "average": "macro"}
    out["confusion_matrix"] = {"labels": rep["labels"], "matrix": rep["confusion"]}
    return out


def baseline_beats_chance(base_logits: np.ndarray, labels: np.ndarray | None) -> tuple[bool, str]:
    """Whether the labels mean anything to this model: its top-1 must be at least twice the
    majority-class rate, and the labels within its outputs (a random-weight zoo model shown
    digits does not predict them; its drops would compare two chance levels)."""
    if labels is None:
        return False, "the data has no labels"
    if labels.max() >= base_logits.shape[1]:
        return False, f"labels go up to {labels.max()}, the model has {base_logits.shape[1]} outputs"
    top1 = float((base_logits.argmax(axis=1) == labels).mean())
    chance = float(np.bincount(labels).max() / len(labels))
    if top1 < 2 * chance:
        return False, (f"the original model's top-1 on these labels is {100 * top1:.1f}%, "
                       f"not above chance ({100 * chance:.1f}%)")
    return True, f"the original model's top-1 is {100 * top1:.1f}% on these labels"
