"""The in-memory dataset every evaluation and calibration step consumes.

Samples are held preprocessed, as one float32 N×C×H×W array. That is fine for what
infertune evaluates on — the sample set, a calibration set of a few hundred images, a
validation subset chosen with `limit` — and it makes every candidate see bit-identical
inputs without re-decoding. It stops being fine for a full ImageNet validation set at
448×448 (50,000 × 2.4 MB ≈ 120 GB): that would need a streaming Dataset that decodes per
batch. `load_dataset` refuses (with a hint to use `limit`) rather than exhaust memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np

from ..errors import ConfigError
from .preprocess import Preprocess


@dataclass
class Dataset:
    """Preprocessed samples, their labels and where they came from.

    Attributes:
        x: float32 N×C×H×W model inputs.
        y: int64 class indices (N,), or None when the data has no labels.
        class_names: class index → name.
        description: one human line: source, size, class order, limit, split.
        preprocess: how `x` was made from the pixels.
        skipped: (name, reason) of each bad sample left out with `skip_bad`.
        ids: per-sample origin (file path, or `file[i]` for array rows).
        source: the dataset spec as the user gave it.
        groups: the cluster of each sample (int64, N) when samples share an origin (several
            `clutter` scenes of one digit), so that intervals do not count them as
            independent (metrics.budget.design_effect); None when they are independent.
    """

    x: np.ndarray
    y: np.ndarray | None
    class_names: list[str]
    description: str
    preprocess: Preprocess
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    source: str = ""
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def labelled(self) -> bool:
        return self.y is not None

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Consecutive float32 batches of `x` (views, the last one possibly shorter).

        Raises:
            ConfigError: batch_size < 1.
        """
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, not {batch_size}")
        for start in range(0, len(self), batch_size):
            yield self.x[start:start + batch_size]

    def subset(self, indices: np.ndarray, note: str) -> "Dataset":
        """A new Dataset of the rows `indices` (copied), `note` appended to the description."""
        idx = np.asarray(indices, dtype=np.int64)
        return replace(self, x=self.x[idx], y=None if self.y is None else self.y[idx],
                       ids=[self.ids[i] for i in idx] if self.ids else [],
                       groups=None if self.groups is None else self.groups[idx],
                       description=f"{self.description}; {note}", skipped=list(self.skipped))

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary: source, size, shape, classes, preprocessing, what was skipped."""
        counts = None
        if self.y is not None:
            values, n = np.unique(self.y, return_counts=True)
            counts = {self._class_name(int(v)): int(c) for v, c in zip(values, n)}
        return {
            "source": self.source,
            "description": self.description,
            "n": len(self),
            "clusters": None if self.groups is None else int(len(np.unique(self.groups))),
            "shape": [int(s) for s in self.x.shape[1:]],
            "labelled": self.labelled,
            "num_classes": len(self.class_names),
            "class_counts": counts,
            "preprocess": self.preprocess.to_dict(),
            "skipped": len(self.skipped),
            "skipped_examples": [{"name": n, "reason": r} for n, r in self.skipped[:10]],
        }

    def _class_name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)


def choose(n_total: int, n: int, labels: np.ndarray | None, seed: int) -> np.ndarray:
    """Sorted indices of `n` of `n_total` samples: seeded, stratified when labelled.

    Stratified means each class gets its share of `n` in proportion to its count, the
    remainders going to the classes with the largest fractional shares (ties: lower class
    index); within a class the samples are a seeded random choice.
    """
    rng = np.random.default_rng(seed)
    if n >= n_total:
        return np.arange(n_total)
    if labels is None:
        return np.sort(rng.choice(n_total, size=n, replace=False))
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = _quotas(counts, n)
    chosen = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        chosen.append(rng.permutation(members)[:quota[k]])
    return np.sort(np.concatenate(chosen))


def _quotas(counts: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder apportionment of `n` over classes of sizes `counts`."""
    share = counts * (n / counts.sum())
    quota = np.floor(share).astype(np.int64)
    order = np.lexsort((np.arange(len(counts)), -(share - quota)))
    quota[order[:n - int(quota.sum())]] += 1
    return np.minimum(quota, counts)
