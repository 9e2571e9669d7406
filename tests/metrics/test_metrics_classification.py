"""Label-based accuracy against hand-built cases and scikit-learn's own functions.

Convention checked: zero_division=0 (a class never predicted has precision 0; F1 0), and
classes reported are the union of true and predicted ones, as scikit-learn's defaults.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as sk

from infertune.metrics import classification_report, confusion_matrix, topk_correct


def _logits_with_ranks(labels, ranks, n_classes=10):
    """Logits where the true class of sample i is ranked ranks[i] (0 = best)."""
    logits = np.zeros((len(labels), n_classes))
    for i, (label, rank) in enumerate(zip(labels, ranks)):
        others = [c for c in range(n_classes) if c != label]
        order = others[:rank] + [label] + others[rank:]
        logits[i, order] = np.arange(n_classes, 0, -1)  # descending scores in that order
    return logits


def test_hand_built_top1_and_top5():
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    ranks = [0, 0, 0, 0, 0, 0, 0, 2, 4, 7]  # 7 first; 2 more within 5; 1 outside
    report = classification_report(_logits_with_ranks(labels, ranks), labels)
    assert report["top1"] == 0.7 and report["top5"] == 0.9 and report["n"] == 10
    assert topk_correct(_logits_with_ranks(labels, ranks), labels, 3).sum() == 8
    lo, hi = report["top1_ci"]
    assert lo < 0.7 < hi


def test_ties_go_to_the_lower_class_index():
    logits = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    labels = np.array([0, 1])
    assert topk_correct(logits, labels, 1).tolist() == [True, False]
    assert topk_correct(logits, labels, 2).tolist() == [True, True]


@pytest.fixture
def noisy():
    """300 samples, 8 classes; class 7 occurs but is never predicted."""
    rng = np.random.default_rng(42)
    labels = rng.integers(0, 8, 300)
    logits = rng.normal(size=(300, 8)) + 2.0 * np.eye(8)[labels]
    logits[:, 7] = -100.0
    return logits, labels


def test_against_sklearn(noisy):
    logits, labels = noisy
    pred = logits.argmax(axis=1)
    assert 7 not in pred and 7 in labels
    report = classification_report(logits, labels, class_names=[f"c{i}" for i in range(8)])
    for average in ("macro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(labels, pred, average=average, zero_division=0)
        assert report[f"precision_{average}"] == pytest.approx(p, abs=1e-12)
        assert report[f"recall_{average}"] == pytest.approx(r, abs=1e-12)
        assert report[f"f1_{average}"] == pytest.approx(f, abs=1e-12)
    p, r, f, s = sk.precision_recall_fscore_support(labels, pred, zero_division=0)
    per = report["per_class"]
    np.testing.assert_allclose([c["precision"] for c in per], p, atol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in per], r, atol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in per], f, atol=1e-12)
    assert [c["support"] for c in per] == s.tolist()
    assert per[7] == {"class": "c7", "index": 7, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                      "support": int(s[7])}
    assert report["confusion"] == sk.confusion_matrix(labels, pred).tolist()
    assert report["top1"] == pytest.approx(sk.accuracy_score(labels, pred), abs=1e-12)
    assert report["top5"] == pytest.approx(
        sk.top_k_accuracy_score(labels, logits, k=5, labels=range(8)), abs=1e-12)


def test_predicted_class_absent_from_labels(noisy):
    logits, labels = noisy
    logits = logits.copy()
    logits[:5, 7] = 100.0  # class 7 now predicted 5 times; drop it from the labels
    labels = np.where(labels == 7, 0, labels)
    pred = logits.argmax(axis=1)
    report = classification_report(logits, labels)
    p, r, f, _ = sk.precision_recall_fscore_support(labels, pred, average="macro", zero_division=0)
    assert (report["precision_macro"], report["recall_macro"], report["f1_macro"]) == pytest.approx(
        (p, r, f), abs=1e-12)
    assert report["labels"] == list(range(8))
    assert report["confusion"] == sk.confusion_matrix(labels, pred).tolist()


def test_intervals_contain_estimates_and_are_seeded(noisy):
    logits, labels = noisy
    a = classification_report(logits, labels, seed=3)
    b = classification_report(logits, labels, seed=3)
    assert a == b
    for name in ("top1", "top5", "precision_macro", "recall_macro", "f1_macro",
                 "precision_weighted", "recall_weighted", "f1_weighted"):
        lo, hi = a[f"{name}_ci"]
        assert 0.0 <= lo <= a[name] <= hi <= 1.0, name
        assert hi - lo < 0.25, name
    json.dumps(a, allow_nan=False)


def test_fewer_classes_than_k():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    report = classification_report(logits, np.array([1, 2]))
    assert report["top5_k"] == 3 and report["top5"] == 1.0 and report["top1"] == 0.5


def test_confusion_matrix_with_explicit_labels():
    cm = confusion_matrix([0, 1, 2, 2], [0, 2, 2, 5], labels=[2, 0, 1])
    np.testing.assert_array_equal(cm, sk.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 5], labels=[2, 0, 1]))


@pytest.mark.parametrize("logits, labels, message", [
    (np.zeros((2, 3)), np.array([0, 3]), "labels\\[1\\]=3 is out of range for 3 classes"),
    (np.array([[0.0, np.nan], [1.0, 0.0]]), np.array([0, 1]), "NaN at sample 0"),
    (np.zeros((2, 3)), np.array([0]), "need logits"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), "integers"),
])
def test_bad_inputs(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        classification_report(logits, labels)
