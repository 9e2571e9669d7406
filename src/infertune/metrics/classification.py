"""Accuracy of a classifier against labels: top-k, per-class P/R/F1, confusion matrix.

Conventions (those of scikit-learn's defaults, so figures can be checked against it):
* Classes reported are those that occur in the labels or the predictions, sorted.
* zero_division = 0: a class never predicted has precision 0, a class never present has
  recall 0, and F1 = 2·TP / (2·TP + FP + FN), 0 when that denominator is 0.
* Top-1 is the arg-max (ties: lowest class index); top-k counts a sample right when fewer
  than k classes outrank the true one, ties broken the same way, so top-1 ⊆ top-k.
* Intervals: Wilson for top-1/top-5; a seeded percentile bootstrap over samples for the
  macro and weighted P/R/F1 (resampled on the fixed class list above).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .intervals import bootstrap_intervals, design_effect, wilson_interval

_AVERAGED = ("precision_macro", "recall_macro", "f1_macro",
             "precision_weighted", "recall_weighted", "f1_weighted")


def check_logits_labels(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 logits (N×K) and int64 labels (N,).

    Raises:
        ValueError: wrong shapes, no samples, labels outside 0..K−1, or NaN logits.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.ndim != 1 or len(logits) != len(labels) or not len(labels):
        raise ValueError(f"need logits N×K and labels (N,), got {logits.shape} and {labels.shape}")
    if labels.dtype.kind not in "ui":
        raise ValueError(f"labels must be integers, not {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= logits.shape[1]))
    if len(bad):
        raise ValueError(f"labels[{bad[0]}]={labels[bad[0]]} is out of range for "
                         f"{logits.shape[1]} classes")
    nan_rows = np.flatnonzero(np.isnan(logits).any(axis=1))
    if len(nan_rows):
        raise ValueError(f"logits contain NaN at sample {nan_rows[0]}")
    return logits, labels.astype(np.int64)


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean per sample: the true class is among the k best (ties: lower index first)."""
    logits, labels = check_logits_labels(logits, labels)
    true_score = logits[np.arange(len(labels)), labels][:, None]
    classes = np.arange(logits.shape[1])[None, :]
    rank = (logits > true_score).sum(axis=1)
    rank += ((logits == true_score) & (classes < labels[:, None])).sum(axis=1)
    return rank < k


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray,
                     labels: Sequence[int] | None = None) -> np.ndarray:
    """Counts C[i, j] of samples of class labels[i] predicted as labels[j] (int64).

    `labels` defaults to the sorted union of y_true and y_pred; pairs outside it are
    not counted (as scikit-learn's confusion_matrix).
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    labels = np.union1d(y_true, y_pred) if labels is None else np.asarray(labels, dtype=np.int64)
    ti, pi = _positions(y_true, labels), _positions(y_pred, labels)
    ok = (ti >= 0) & (pi >= 0)
    n = len(labels)
    return np.bincount(ti[ok] * n + pi[ok], minlength=n * n).reshape(n, n)


def _positions(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Position of each value in `labels` (any order), −1 where absent."""
    if len(labels) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    j = np.clip(np.searchsorted(ordered, values), 0, len(ordered) - 1)
    return np.where(ordered[j] == values, order[j], -1)


def prf_from_counts(tp: np.ndarray, predicted: np.ndarray, support: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 (zero_division=0), vectorised over leading axes."""
    tp, predicted, support = (np.asarray(a, dtype=np.float64) for a in (tp, predicted, support))
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = predicted + support
    f1 = np.divide(2 * tp, both, out=np.zeros_like(tp), where=both > 0)
    return precision, recall, f1


def averaged_prf(tp: np.ndarray, predicted: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Macro and weighted P/R/F1 in the order of `_AVERAGED`, shape (..., 6)."""
    p, r, f1 = prf_from_counts(tp, predicted, support)
    support = np.asarray(support, dtype=np.float64)
    weights = support / np.maximum(support.sum(axis=-1, keepdims=True), 1.0)
    macro = [m.mean(axis=-1) for m in (p, r, f1)]
    weighted = [(m * weights).sum(axis=-1) for m in (p, r, f1)]
    return np.stack(macro + weighted, axis=-1)


def _group_sum(counts: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of `counts` (B×M) grouped by `groups` (M,) into B×n_groups."""
    out = np.zeros((counts.shape[0], n_groups), dtype=np.float64)
    if len(groups) == 0:
        return out
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    out[:, g[starts]] = np.add.reduceat(counts[:, order], starts, axis=1)
    return out


def _cell_statistic(rows: np.ndarray, cols: np.ndarray, n_labels: int):
    """Maps resampled counts over confusion cells (rows[m], cols[m]) to the 6 averages."""
    diagonal = rows == cols

    def statistic(counts: np.ndarray) -> np.ndarray:
        tp = _group_sum(counts[:, diagonal], rows[diagonal], n_labels)
        predicted = _group_sum(counts, cols, n_labels)
        support = _group_sum(counts, rows, n_labels)
        return averaged_prf(tp, predicted, support)

    return statistic


def classification_report(logits: np.ndarray, labels: np.ndarray, *,
                          class_names: Sequence[str] | None = None, k: int = 5,
                          confidence: float = 0.95, n_boot: int = 1000,
                          seed: int = 0, groups: np.ndarray | None = None) -> dict[str, Any]:
    """All label-based accuracy figures, JSON-ready.

    Args:
        logits: N×K scores (logits or probabilities; only their order matters).
        labels: N true class indices.
        class_names: names for class indices (used in `per_class`); indices otherwise.
        k: the "top-5" k; min(k, K) is used (and reported as `top5_k`).
        confidence: level of every interval.
        n_boot: bootstrap resamples for the P/R/F1 intervals.
        seed: bootstrap seed.
        groups: the cluster of each sample, or None when they are independent. Clustered
            samples widen the intervals by their design effect (metrics.intervals): top-1
            and top-5 divide their counts by their own; the P/R/F1 bootstrap resamples
            n / D samples, D that of top-1 correctness.

    Returns:
        `n`, `num_classes`, `top1`, `top5` (fractions), `precision_macro`, `recall_macro`,
        `f1_macro`, the same `_weighted`, each with `<name>_ci` = [lo, hi]; `per_class`
        ({class, index, precision, recall, f1, support}), `labels` (class indices of the
        rows/columns of `confusion`), `confusion` (rows true, columns predicted), and how
        the intervals were made (`confidence`, `bootstrap`, `zero_division`,
        `design_effect` of top-1 correctness: 1 for independent samples).
    """
    logits, labels = check_logits_labels(logits, labels)
    n, n_classes = logits.shape
    k_used = max(1, min(k, n_classes))
    correct1 = topk_correct(logits, labels, 1)
    correctk = topk_correct(logits, labels, k_used)
    deff1, deffk = design_effect(correct1, groups), design_effect(correctk, groups)
    pred = logits.argmax(axis=1)
    label_set = np.union1d(labels, pred)
    cm = confusion_matrix(labels, pred, label_set)
    out: dict[str, Any] = {"n": n, "num_classes": n_classes, "top5_k": k_used,
                           "design_effect": deff1}
    out.update(_proportion("top1", int(correct1.sum()), n, confidence, deff1))
    out.update(_proportion("top5", int(correctk.sum()), n, confidence, deffk))
    out.update(_averages_with_ci(cm, confidence, n_boot, seed, max(1, round(n / deff1))))
    out["per_class"] = _per_class(cm, label_set, class_names)
    out["labels"] = [int(c) for c in label_set]
    out["confusion"] = cm.tolist()
    out.update(confidence=confidence, zero_division=0,
               bootstrap={"resamples": n_boot, "seed": seed, "method": "percentile"})
    return out


def _proportion(name: str, successes: int, n: int, confidence: float,
                deff: float = 1.0) -> dict[str, Any]:
    lo, hi = wilson_interval(successes / deff, n / deff, confidence)
    return {name: successes / n, f"{name}_ci": [lo, hi]}


def _averages_with_ci(cm: np.ndarray, confidence: float, n_boot: int,
                      seed: int, size: int | None = None) -> dict[str, Any]:
    rows, cols = np.nonzero(cm)
    statistic = _cell_statistic(rows, cols, len(cm))
    counts = cm[rows, cols]
    point = statistic(counts[None, :])[0]
    ci = bootstrap_intervals(counts, statistic, n_boot=n_boot, seed=seed, confidence=confidence,
                             size=size)
    out: dict[str, Any] = {}
    for name, value, (lo, hi) in zip(_AVERAGED, point, ci):
        out[name] = float(value)
        out[f"{name}_ci"] = [float(lo), float(hi)]
    return out


def _per_class(cm: np.ndarray, label_set: np.ndarray,
               class_names: Sequence[str] | None) -> list[dict[str, Any]]:
    support = cm.sum(axis=1)
    p, r, f1 = prf_from_counts(np.diag(cm), cm.sum(axis=0), support)
    rows = []
    for i, c in enumerate(label_set):
        c = int(c)
        name = class_names[c] if class_names is not None and c < len(class_names) else c
        rows.append({"class": name, "index": c, "precision": float(p[i]), "recall": float(r[i]),
                     "f1": float(f1[i]), "support": int(support[i])})
    return rows
