"""Trained weights shared between the pipelines of one run.

A recovery pass (`distill`, `finetune`) trains for a wall-clock budget, so two runs of the
same recipe give different weights. In a search, `prune 0.25 + distill` is one candidate and
`prune 0.25 + distill + INT8` (the combined stage) another: training again for the second
would cost the whole recovery a second time *and* quantize a different model from the one
that was measured. So the first pipeline to train publishes the weights it ended with, keyed
by what training started from (the input model's weights and structure, byte for byte), the
pass, its options, the seed and the training data; every later pipeline with the same key
loads them instead of training. The key names content, not candidate ids, so a resumed run
reuses them too.

Loading is `torch.load(weights_only=True)` of a state dict into a copy of the input model
(training never changes a model's structure): a file whose keys or shapes do not fit is
ignored and the pass trains as if there were none.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from .._atomic import atomic_path, write_text
from ..types import ModelHandle
from .base import PassContext, PassResult

FOLDER = "trained"
# Said in the pass report of a pipeline that loaded cached weights instead of training.
NOTE = "weights reused from the run's cache: trained once by an earlier pipeline with the same key"


def key(model: ModelHandle, name: str, config: Any, ctx: PassContext) -> str:
    """Content digest of (input weights and their names/shapes, pass, options, seed, data).
    The teacher (ctx.reference) is not in it: the cache is one run's, whose model is fixed."""
    import numpy as np

    h = hashlib.blake2b(digest_size=16)
    hash_weights(h, model.obj)
    options = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}
    options.pop("quiet", None)
    h.update(json.dumps([name, options, ctx.seed], sort_keys=True, default=str).encode())
    for part in (ctx.train if ctx.train is not None else ctx.calibration, ctx.validation):
        if part is not None:
            x = np.ascontiguousarray(part.x)
            h.update(hashlib.blake2b(memoryview(x).cast("B"), digest_size=8).digest())
            if part.y is not None:
                h.update(np.ascontiguousarray(part.y, dtype=np.int64).tobytes())
    return h.hexdigest()


def hash_weights(h: Any, module: Any) -> None:
    """Feeds a torch module's weights (names, shapes, dtypes, bytes) into the hash `h`."""
    import torch

    for k, v in module.state_dict().items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def paths(ctx: PassContext, digest: str) -> tuple[Path, Path]:
    folder = ctx.cache_dir / FOLDER  # pipeline._apply calls here only with a run cache
    return folder / f"{digest}.pt", folder / f"{digest}.json"


def load(model: ModelHandle, digest: str, ctx: PassContext) -> PassResult | None:
    """The cached result of training `model` under `digest`, or None (absent or unusable)."""
    import torch

    weights, report = paths(ctx, digest)
    if not (weights.exists() and report.exists()):
        return None
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        details = json.loads(report.read_text())
        net = copy.deepcopy(model.obj)
        net.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, ValueError, KeyError, EOFError, pickle.UnpicklingError):
        return None
    net.eval()
    new = dataclasses.replace(model, obj=net, meta={**model.meta, **details.pop("meta", {})})
    return PassResult(new, True, None, {**details, "cache": NOTE})


def save(before: ModelHandle, result: PassResult, digest: str, ctx: PassContext) -> None:
    """Publishes a trained result under `digest` (atomic renames; the first writer wins).
    Only a result with the input model's structure (same state-dict names) is kept."""
    import torch

    if not result.applied or result.model.format != "torch" \
            or result.model.obj.state_dict().keys() != before.obj.state_dict().keys():
        return
    weights, report = paths(ctx, digest)
    if weights.exists() and report.exists():
        return
    weights.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(weights) as tmp:
        torch.save(result.model.obj.state_dict(), tmp)
    meta = {k: v for k, v in result.model.meta.items()
            if before.meta.get(k) != v and isinstance(v, (str, int, float, bool))}
    write_text(report, json.dumps({**result.details, "meta": meta}, default=str))
