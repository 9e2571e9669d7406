"""The teacher's outputs on the training images, computed once per run.

`distill` trains a student against the original model's outputs on every training image
(`qat` computes its teacher's outputs itself: its teacher can be another model). In a
search, each compression candidate is its own pipeline, and each computed those outputs
again: ref-clutter's 4,096 training images through the eager float model take 68 s on 2
cores, a third of a 135 s recovery's build on top of the recovery itself. The teacher
(ctx.reference) and the training images are the same for every pipeline of a run, so the
first computes them (in the faster weight layout, `recovery.predict_fastest`) and
publishes them in the run's cache; the others load them.

The key names content: the teacher's weights (names, shapes, bytes) and the images'
bytes. The file is a plain .npy (read with allow_pickle=False), written atomically; one
whose shape does not fit the images is ignored and the outputs are computed again.
Without a run cache (`infertune pass`), nothing is kept.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .._atomic import atomic_path
from ._trained_cache import hash_weights
from .base import PassContext
from .recovery import is_probability, logits, predict_fastest

FOLDER = "teacher"


def key(teacher: Any, x: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    hash_weights(h, teacher)
    h.update(memoryview(np.ascontiguousarray(x)).cast("B"))
    return h.hexdigest()


def teacher_logits(teacher: Any, x: np.ndarray, ctx: PassContext) -> tuple[Any, bool]:
    """(the teacher's logits on x as a torch tensor, whether it outputs probabilities) —
    `recovery.predict_fastest`'s result (the faster weight layout, FP32 either way), from
    the run's cache when an earlier pipeline stored it."""
    import torch

    teacher.eval()
    with torch.no_grad():
        probabilities = is_probability(logits(teacher(torch.from_numpy(x[:8]))))
    if ctx.cache_dir is None:
        return predict_fastest(teacher, x, probabilities)[0], probabilities
    path = ctx.cache_dir / FOLDER / f"{key(teacher, x)}.npy"
    if path.exists():
        try:
            found = np.load(path, allow_pickle=False)
            if found.shape[:1] == (len(x),):
                return torch.from_numpy(found), probabilities
        except (OSError, ValueError):
            pass
    out = predict_fastest(teacher, x, probabilities)[0]
    if not path.exists():
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, out.numpy())
    return out, probabilities

