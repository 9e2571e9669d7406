"""Darknet's `letterbox_image`: the whole image, aspect ratio kept, centred on a grey canvas.

The image (bytes/255) is resized with Darknet's own bilinear `resize_image` to
(new_h, new_w) = `letterbox_size` (integer arithmetic, as Darknet), then embedded at
((H − new_h)/2, (W − new_w)/2) (integer division) in an H×W canvas filled with 0.5 —
or with the spec's `pad_value` (Ultralytics' layout: 114/255, its LetterBox's grey).
`decode.correct_boxes` undoes exactly this geometry.
"""
from __future__ import annotations

import numpy as np

from ...data.preprocess import darknet_resize, to_float
from .decode import letterbox_size
from .heads import DARKNET_GREY

GREY = DARKNET_GREY


def letterbox(pixels: np.ndarray, net_hw: tuple[int, int], pad: float = GREY) -> np.ndarray:
    """uint8 (C, h, w) pixels (or floats in [0, 1]) → float32 (C, H, W) network input, the
    padding filled with `pad` (a DetectionSpec's `pad_value`)."""
    x = to_float(np.asarray(pixels), unit_scale=True)
    if x.ndim != 3:
        raise ValueError(f"letterbox takes one (C, h, w) image, got shape {x.shape}")
    c, h, w = x.shape
    net_h, net_w = net_hw
    new_h, new_w = letterbox_size((h, w), net_hw)
    resized = x if (new_h, new_w) == (h, w) else darknet_resize(x, new_h, new_w)
    canvas = np.full((c, net_h, net_w), pad, dtype=np.float32)
    top, left = (net_h - new_h) // 2, (net_w - new_w) // 2
    canvas[:, top:top + new_h, left:left + new_w] = resized
    return canvas


def letterbox_batch(images: list[np.ndarray], net_hw: tuple[int, int],
                    pad: float = GREY) -> np.ndarray:
    """A (B, C, H, W) float32 batch of letterboxed images of any sizes."""
    return np.stack([letterbox(image, net_hw, pad) for image in images])
