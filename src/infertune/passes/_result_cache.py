"""JSON results of costly analyses, shared by the pipelines of one run.

A search builds mixed_precision at several K (and two rankings) as separate candidates, each
in its own pipeline, and every one of them needs the same sensitivity ranking (one
`quantize_static` and one inference pass per layer: ~50 s for EfficientNet-Lite0 on 2 cores)
and, with rank=cost, the same per-layer profiles. Computed once per run, the later builds
take seconds, and their kept sets are nested (K=2's layers are K=4's first two): measured
again, timer noise could reorder two layers of nearly equal cost.

The key names content: the prepared model's file name is its digest (`_ort_quant.prepare`),
the data is hashed, the options are written out. Results live in the run's cache
(`PassContext.cache_dir`, RUN_DIR/cache for `optimize`), written atomically (first writer
wins); without a run cache (`infertune pass`, `infertune sensitivity`) nothing is kept. A
file that does not parse is recomputed.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

import numpy as np

from .._atomic import write_text
from .base import PassContext

FOLDER = "results"


def data_digest(x: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=8).hexdigest()


def key(kind: str, parts: dict[str, Any]) -> str:
    text = json.dumps([kind, parts], sort_keys=True, default=str)
    return f"{kind}-{hashlib.blake2b(text.encode(), digest_size=12).hexdigest()}"


def cached(ctx: PassContext, kind: str, parts: dict[str, Any],
           compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """compute()'s result for the content `parts` names, read from the run's cache when an
    earlier pipeline stored it (marked {"cached": True}), else computed and stored."""
    if ctx.cache_dir is None:
        return compute()
    path = ctx.cache_dir / FOLDER / f"{key(kind, parts)}.json"
    if path.exists():
        try:
            return {**json.loads(path.read_text()), "cached": True}
        except (OSError, ValueError):
            pass
    result = compute()
    if not path.exists():
        write_text(path, json.dumps(result, default=_plain))
    return result


def _plain(value: Any) -> Any:
    """numpy scalars (SQNRs, agreements) as Python numbers; anything else as text."""
    return value.item() if isinstance(value, np.generic) else str(value)
