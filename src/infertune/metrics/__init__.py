"""Accuracy, fidelity and paired comparisons, from numpy outputs only (no framework).

* `classification_report(logits, labels)` — top-1/top-5, per-class and averaged
  precision/recall/F1 with intervals, confusion matrix (labels needed).
* `fidelity(reference, test)` — agreement with a reference model's outputs (no labels).
* `compare_top1(baseline_logits, candidate_logits, labels)` / `paired_comparison` — the
  top-1 difference with a paired interval and McNemar's p-value.
* `BudgetRule` (budget.py) — the one rule deciding whether a drop is within the budget.
"""
from __future__ import annotations

from .classification import classification_report, confusion_matrix, topk_correct
from .budget import BudgetRule, paired_difference_interval
from .compare import compare_top1, paired_comparison
from .fidelity import cosine_per_sample, fidelity, sqnr_db
from .intervals import bootstrap_interval, bootstrap_intervals, mcnemar_exact, wilson_interval

__all__ = [
    "classification_report", "confusion_matrix", "topk_correct",
    "BudgetRule", "paired_difference_interval", "compare_top1", "paired_comparison",
    "cosine_per_sample", "fidelity", "sqnr_db",
    "bootstrap_interval", "bootstrap_intervals", "mcnemar_exact", "wilson_interval",
]
