"""Flattening a model's outputs: every tensor inside nested tuples/lists/dicts, in order.

A forward pass may return a tensor, a tuple of them (detectors: one per head) or a dict; the
profiler, the exporter, the torch runtime and the in-process runner all want the flat list.
It lives here, below every package, because the profiler (the lowest layer that runs a model)
needs it too. torch is imported only when a function runs.
"""
from __future__ import annotations

from typing import Any


def tensors_in(obj: Any) -> list:
    """Every tensor inside nested tuples/lists/dicts, in order."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in tensors_in(item)]
    return []
