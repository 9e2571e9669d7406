"""Fidelity: how closely a candidate's outputs follow a reference model's on the same inputs.

This is agreement with another model, never accuracy: it needs no labels, and a candidate
can agree 100% with a reference that is itself wrong. Reported as
`fidelity.{top1_agreement, cosine, sqnr_db, max_abs}`.

Identical outputs give ``sqnr_db = math.inf`` (a float in Python). ``json.dumps`` would
write it as the non-standard ``Infinity``; the JSON layer must map it (e.g. to null with
a note, or the string "inf") before writing strict JSON.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .intervals import design_effect, wilson_interval


def _check_pair(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both outputs as float64 N×D; same shape, at least one sample, all finite.

    Raises:
        ValueError: shapes differ, no samples, or a NaN/inf (first sample named).
    """
    ref, out = np.asarray(reference, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if ref.shape != out.shape or ref.ndim < 1 or len(ref) == 0:
        raise ValueError(f"reference and test outputs must have the same shape (N, ...), "
                         f"got {ref.shape} and {out.shape}")
    ref, out = ref.reshape(len(ref), -1), out.reshape(len(out), -1)
    for label, arr in (("reference", ref), ("test", out)):
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(bad):
            raise ValueError(f"{label} outputs are not finite at sample {bad[0]}")
    return ref, out


def cosine_per_sample(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row pair; 1 when both rows are zero, 0 when one is."""
    dot = (ref * out).sum(axis=1)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cos = np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)
    both_zero = ~ref.any(axis=1) & ~out.any(axis=1)
    cos[both_zero] = 1.0
    return np.clip(cos, -1.0, 1.0)


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """10·log10(Σref² / Σ(ref − test)²) over all values, in dB.

    Returns math.inf for identical outputs and −math.inf for a zero reference with a
    non-zero difference.
    """
    ref, out = _check_pair(reference, test)
    signal, noise = float((ref * ref).sum()), float(((ref - out) ** 2).sum())
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def fidelity(reference: np.ndarray, test: np.ndarray, *,
             confidence: float = 0.95, groups: np.ndarray | None = None) -> dict[str, Any]:
    """Agreement of `test` outputs with `reference` outputs on the same samples.

    Args:
        reference: outputs of the reference model, (N, ...) — logits N×K for classifiers.
        test: outputs of the candidate, same shape.
        confidence: level of the Wilson interval on top-1 agreement.
        groups: the cluster of each sample, or None when they are independent; clustered
            samples divide the agreement counts by their design effect (metrics.intervals).

    Returns:
        `n`; `top1_agreement` (fraction of samples whose arg-max agrees) with
        `top1_agreement_ci` — both None unless the outputs are N×K; `cosine` (mean over
        samples of the per-sample cosine similarity) and `cosine_min`; `sqnr_db`
        (math.inf when identical); `max_abs` (largest absolute difference).

    Raises:
        ValueError: shapes differ, or outputs are not finite.
    """
    ref, out = _check_pair(reference, test)
    n = len(ref)
    result: dict[str, Any] = {"n": n, "top1_agreement": None, "top1_agreement_ci": None}
    if np.ndim(reference) == 2:
        same = ref.argmax(axis=1) == out.argmax(axis=1)
        agree, deff = int(same.sum()), design_effect(same, groups)
        result["top1_agreement"] = agree / n
        result["top1_agreement_ci"] = list(wilson_interval(agree / deff, n / deff, confidence))
    cos = cosine_per_sample(ref, out)
    result.update(cosine=float(cos.mean()), cosine_min=float(cos.min()),
                  sqnr_db=sqnr_db(ref, out), max_abs=float(np.abs(ref - out).max()))
    return result
