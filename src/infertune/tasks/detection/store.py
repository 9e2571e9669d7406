"""Detections and labelled images as flat arrays in one .npz file, and network inputs.

An optimize run decodes each candidate's outputs in the candidate's own process and hands
the parent only its boxes: raw head maps are large (yolov3-tiny: 215k floats per image),
boxes are not. The same layout holds the run's ground truth. One file per set: the boxes,
scores, classes and crowd flags of every image concatenated, with the count per image,
each image's (height, width) and id. Loaded with `allow_pickle=False`: plain arrays only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..._atomic import atomic_path
from ...data.sources import decode_image
from .letterbox import network_input
from .records import DetectionSample, Detections

MAX_DETS = 100  # COCO counts the 100 best of an image; more are never scored


def _write(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def save_detections(path: Path, dets: Sequence[Detections]) -> None:
    """Each image's best MAX_DETS detections (they come best first)."""
    kept = [d if len(d) <= MAX_DETS else Detections(d.boxes[:MAX_DETS], d.scores[:MAX_DETS],
                                                    d.classes[:MAX_DETS], d.image_hw)
            for d in dets]
    _write(path, boxes=np.concatenate([d.boxes for d in kept] or [np.zeros((0, 4))]),
           scores=np.concatenate([d.scores for d in kept] or [np.zeros(0)]),
           classes=np.concatenate([d.classes for d in kept] or [np.zeros(0, np.int64)]),
           counts=np.array([len(d) for d in kept], np.int64),
           hw=np.array([d.image_hw for d in kept], np.int64).reshape(-1, 2))


def load_detections(path: Path) -> list[Detections]:
    with np.load(path, allow_pickle=False) as z:
        at = _offsets(z["counts"])
        return [Detections(z["boxes"][a:b], z["scores"][a:b], z["classes"][a:b],
                           (int(hw[0]), int(hw[1])))
                for a, b, hw in zip(at[:-1], at[1:], z["hw"])]


def save_samples(path: Path, samples: Sequence[DetectionSample]) -> None:
    """Ground truth (the image paths are not kept: the run has the images as arrays)."""
    _write(path, boxes=np.concatenate([s.boxes for s in samples] or [np.zeros((0, 4))]),
           classes=np.concatenate([s.classes for s in samples] or [np.zeros(0, np.int64)]),
           crowd=np.concatenate([s.crowd for s in samples] or [np.zeros(0, bool)]),
           counts=np.array([len(s.boxes) for s in samples], np.int64),
           hw=np.array([s.image_hw for s in samples], np.int64).reshape(-1, 2),
           ids=np.array([s.image_id for s in samples], np.int64))


def load_samples(path: Path) -> list[DetectionSample]:
    with np.load(path, allow_pickle=False) as z:
        at = _offsets(z["counts"])
        return [DetectionSample(Path(f"<image {int(i)}>"), (int(hw[0]), int(hw[1])),
                                z["boxes"][a:b], z["classes"][a:b], int(i), z["crowd"][a:b])
                for a, b, hw, i in zip(at[:-1], at[1:], z["hw"], z["ids"])]


def network_inputs(samples: Sequence[DetectionSample], spec, channels: int) -> np.ndarray:
    """(N, C, H, W) float32 network inputs of the samples' images, made as the model's
    DetectionSpec `spec` says (letterbox with its pad_value, or stretch: `letterbox.py`)."""
    out = np.empty((len(samples), channels, *spec.input_hw), np.float32)
    for i, s in enumerate(samples):
        out[i] = network_input(decode_image(s.image, channels), spec)
    return out
