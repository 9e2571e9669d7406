"""End-to-end timing: from an image file on disk to the class label (a detector's spec, with
"task": "detection", goes to e2e_detect.py: file to boxes, and its parts timed alone).

For a classifier, one timed call = read + decode the file (Pillow), preprocess it with the
model's preset (`infertune.data.preprocess`: the same code `eval` uses), run the session at
batch 1, and take the arg-max. It runs in the measuring child right after the model-only
latency loop, so both numbers come from the same process, session and minutes of machine
time. The files cycle in a fixed order; after the first pass they are in the OS page cache,
as they would be on a server that reads recently written uploads. The parent only lists the
files (`list_images`); everything else runs in the child.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.preprocess import apply_preprocess, resolve_preprocess
from ..data.sources import IMAGE_SUFFIXES, decode_image
from ..errors import DataError
from . import stats, timing
from .e2e_detect import run_e2e_detection

# Enough distinct files that one image's cache state or size does not dominate the loop.
MAX_IMAGES = 64


def list_images(path: str | Path, limit: int = MAX_IMAGES) -> list[str]:
    """The image files of `path` (a file, or a folder searched recursively), sorted.

    Raises:
        DataError: no such path, or a folder without images.
    """
    p = Path(path)
    if p.is_file():
        return [str(p.resolve())]
    if not p.is_dir():
        raise DataError("no such image file or folder", path=str(path))
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder", path=str(path))
    return [str(f.resolve()) for f in files[:limit]]


def make_spec(images: list[str], preprocess: str, input_chw: tuple[int, int, int]) -> dict:
    """The job's "e2e" entry (JSON-ready)."""
    return {"images": list(images), "preprocess": preprocess, "shape": [int(d) for d in input_chw]}


class ImageToLabel:
    """Callable timed by the harness: next file -> decoded -> preprocessed -> label."""

    def __init__(self, session, spec: dict[str, Any]):
        self.session = session
        self.paths = [Path(p) for p in spec["images"]]
        self.channels, height, width = (int(d) for d in spec["shape"])
        self.hw = (height, width)
        self.pre = resolve_preprocess(spec["preprocess"])
        self.calls = 0

    def __call__(self, _unused: Any = None) -> int:
        path = self.paths[self.calls % len(self.paths)]
        self.calls += 1
        pixels = decode_image(path, self.channels)
        x = apply_preprocess(pixels[None], self.pre, self.hw, name=str(path))
        outputs = self.session.run(np.ascontiguousarray(x, dtype=np.float32))
        first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        return int(np.argmax(np.asarray(first)[0]))


def run_e2e(session, spec: dict[str, Any], timing_config, model_p50_ms: float | None) -> dict:
    """Times ImageToLabel (ImageToBoxes for a detector's spec) with the harness's loop;
    returns the result's "e2e" block."""
    if spec.get("task") == "detection":
        return run_e2e_detection(session, spec, timing_config, model_p50_ms)
    fn = ImageToLabel(session, spec)
    first_label = fn()  # also imports Pillow and the preprocessing outside the timed loop
    samples = timing.time_calls(fn, None, timing_config)
    summary = stats.latency_summary(samples)
    added = summary["p50"] - model_p50_ms if model_p50_ms is not None else None
    return {"latency_ms": summary, "images": len(fn.paths), "preprocess": fn.pre.to_dict(),
            "model_only_p50_ms": model_p50_ms, "added_p50_ms": added,
            "first_label": first_label}
