"""Accuracy, fidelity and paired comparisons, from numpy outputs only (no framework).

* `classification_report(logits, labels)` — top-1/top-5, per-class and averaged
  precision/recall/F1 with intervals, confusion matrix (labels needed).
* `fidelity(reference, test)` — agreement with a reference model's outputs (no labels).
* `compare_top1(baseline_logits, candidate_logits, labels)` / `paired_comparison` — the
  top-1 difference with a paired interval and McNemar's p-value; `within_budget` decides
  whether a drop is acceptable.
"""
from __future__ import annotations

from .classification import classification_report, confusion_matrix, topk_correct
from .compare import compare_top1, drop_upper_bound, paired_comparison, within_budget
from .fidelity import cosine_per_sample, fidelity, sqnr_db
from .intervals import bootstrap_interval, bootstrap_intervals, mcnemar_exact, wilson_interval

__all__ = [
    "classification_report", "confusion_matrix", "topk_correct",
    "compare_top1", "drop_upper_bound", "paired_comparison", "within_budget",
    "cosine_per_sample", "fidelity", "sqnr_db",
    "bootstrap_interval", "bootstrap_intervals", "mcnemar_exact", "wilson_interval",
]
