"""A detector's network input from an image: Darknet's `letterbox_image` or its plain
`resize_image`, as the model's DetectionSpec.letterbox says.

Letterbox: the image (bytes/255) is resized with Darknet's own bilinear `resize_image` to
(new_h, new_w) = `letterbox_size` (integer arithmetic, as Darknet), then embedded at
((H − new_h)/2, (W − new_w)/2) (integer division) in an H×W canvas filled with 0.5 —
or with the spec's `pad_value` (Ultralytics' layout: 114/255, its LetterBox's grey).
Stretch (AlexeyAB's darknet with `letter_box=0`, its default): the whole image resized to
H×W, aspect ratio not kept. `decode.correct_boxes` undoes exactly either geometry.
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


def stretch(pixels: np.ndarray, net_hw: tuple[int, int]) -> np.ndarray:
    """uint8 (C, h, w) pixels (or floats in [0, 1]) → float32 (C, H, W): the whole image
    resized to the network's size (Darknet's `resize_image`), no padding."""
    x = to_float(np.asarray(pixels), unit_scale=True)
    if x.ndim != 3:
        raise ValueError(f"stretch takes one (C, h, w) image, got shape {x.shape}")
    net_h, net_w = net_hw
    return x if x.shape[1:] == (net_h, net_w) else darknet_resize(x, net_h, net_w)


def network_input(pixels: np.ndarray, spec) -> np.ndarray:
    """The (C, H, W) input of a detector whose DetectionSpec is `spec`."""
    if spec.letterbox:
        return letterbox(pixels, spec.input_hw, spec.pad_value)
    return stretch(pixels, spec.input_hw)


def letterbox_batch(images: list[np.ndarray], net_hw: tuple[int, int],
                    pad: float = GREY) -> np.ndarray:
    """A (B, C, H, W) float32 batch of letterboxed images of any sizes."""
    return np.stack([letterbox(image, net_hw, pad) for image in images])
