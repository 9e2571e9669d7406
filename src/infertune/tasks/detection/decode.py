"""Raw head maps → candidate boxes, as Darknet's `get_yolo_detections` /
`get_region_detections` compute them (numpy, outside the timed network).

A map is (C, H, W) for one image with C = anchors·(entries), entry e of anchor a at channel
a·entries + e (Darknet's `entry_index`). Candidates are boxes (cx, cy, w, h) relative to the
network input (0..1), with Darknet's per-class `prob` = objectness · class probability,
zeroed where it is not above the threshold.

[yolo] (YOLOv3/v4, AlexeyAB `forward_yolo_layer` + `get_yolo_box`):
    x = (col + σ(tx)·s − (s−1)/2) / W,  w = exp(tw) · anchor_w / net_w   (s = scale_x_y)
    objectness σ(to), classes σ(tc) each. With `new_coords` the conv already applied its
    logistic, so there is no σ and w = (2·tw)² · anchor_w / net_w.
[region] (YOLOv2, `get_region_box`): x = (col + σ(tx)) / W, w = exp(tw) · anchor_w / W
    (anchors in grid cells), objectness σ(to) (1 with `background`), classes softmax or σ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .heads import RegionHead, YoloHead


@dataclass(frozen=True)
class Candidates:
    """Boxes before NMS. boxes: (N, 4) cx, cy, w, h relative to the image (or the network
    input before `correct_boxes`); objectness: (N,); probs: (N, classes)."""

    boxes: np.ndarray
    objectness: np.ndarray
    probs: np.ndarray

    @staticmethod
    def concat(parts: list["Candidates"], classes: int) -> "Candidates":
        if not parts:
            return Candidates(np.zeros((0, 4)), np.zeros(0), np.zeros((0, classes)))
        return Candidates(np.concatenate([p.boxes for p in parts]),
                          np.concatenate([p.objectness for p in parts]),
                          np.concatenate([p.probs for p in parts]))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _entries(raw: np.ndarray, anchors: int, entries: int, what: str) -> np.ndarray:
    """(C, H, W) → (anchors, entries, H, W), checking C."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 3 or raw.shape[0] != anchors * entries:
        raise ValueError(f"{what} map must be ({anchors}·{entries}, H, W), got {raw.shape}")
    return raw.reshape(anchors, entries, *raw.shape[1:])


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                             indexing="ij")
    return cols, rows


def _flatten(x, y, w, h, objectness, probs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-anchor (A, H, W) arrays → rows ordered as Darknet walks them (cell, then anchor)."""
    boxes = np.stack([x, y, w, h], axis=-1).transpose(1, 2, 0, 3).reshape(-1, 4)
    obj = objectness.transpose(1, 2, 0).reshape(-1)
    cls = probs.transpose(2, 3, 0, 1).reshape(len(obj), -1)
    return boxes, obj, cls


def decode_yolo(raw: np.ndarray, head: YoloHead, net_hw: tuple[int, int],
                threshold: float) -> Candidates:
    """Candidates of one [yolo] map whose objectness is above `threshold`."""
    t = _entries(raw, len(head.anchors), 5 + head.classes, f"[yolo] layer {head.layer}")
    _, _, h, w = t.shape
    act = (lambda v: v) if head.new_coords else sigmoid
    s = head.scale_x_y
    tx, ty = act(t[:, 0]) * s - 0.5 * (s - 1.0), act(t[:, 1]) * s - 0.5 * (s - 1.0)
    anchors = np.asarray(head.anchors, dtype=np.float64)
    aw, ah = anchors[:, 0, None, None], anchors[:, 1, None, None]
    if head.new_coords:
        bw, bh = (t[:, 2] ** 2) * 4.0 * aw / net_hw[1], (t[:, 3] ** 2) * 4.0 * ah / net_hw[0]
    else:
        bw, bh = np.exp(t[:, 2]) * aw / net_hw[1], np.exp(t[:, 3]) * ah / net_hw[0]
    cols, rows = _grid(h, w)
    objectness, classes = act(t[:, 4]), act(t[:, 5:])
    boxes, obj, cls = _flatten((cols + tx) / w, (rows + ty) / h, bw, bh, objectness, classes)
    keep = obj > threshold  # Darknet: `if (objectness > thresh)`
    probs = obj[keep, None] * cls[keep]
    return Candidates(boxes[keep], obj[keep], np.where(probs > threshold, probs, 0.0))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def decode_region(raw: np.ndarray, head: RegionHead, threshold: float) -> Candidates:
    """Candidates of one [region] map whose objectness is above `threshold` (Darknet keeps the
    others with objectness 0, which its NMS then drops)."""
    entries = head.coords + 1 + head.classes
    t = _entries(raw, len(head.anchors), entries, f"[region] layer {head.layer}")
    _, _, h, w = t.shape
    anchors = np.asarray(head.anchors, dtype=np.float64)
    cols, rows = _grid(h, w)
    x, y = (cols + sigmoid(t[:, 0])) / w, (rows + sigmoid(t[:, 1])) / h
    bw = np.exp(t[:, 2]) * anchors[:, 0, None, None] / w
    bh = np.exp(t[:, 3]) * anchors[:, 1, None, None] / h
    first = head.coords + (0 if head.background else 1)
    logits = t[:, first:first + head.classes]
    classes = _softmax(logits, axis=1) if head.softmax else sigmoid(logits)
    objectness = np.ones_like(x) if head.background else sigmoid(t[:, head.coords])
    boxes, obj, cls = _flatten(x, y, bw, bh, objectness, classes)
    keep = obj > threshold
    probs = obj[keep, None] * cls[keep]
    return Candidates(boxes[keep], obj[keep], np.where(probs > threshold, probs, 0.0))


def letterbox_size(image_hw: tuple[int, int], net_hw: tuple[int, int]) -> tuple[int, int]:
    """(new_h, new_w) of the image inside the network input (`letterbox_image`'s integers)."""
    (h, w), (net_h, net_w) = image_hw, net_hw
    if net_w / w < net_h / h:
        return (h * net_w) // w, net_w
    return net_h, (w * net_h) // h


def correct_boxes(boxes: np.ndarray, image_hw: tuple[int, int], net_hw: tuple[int, int],
                  letterbox: bool) -> np.ndarray:
    """Network-relative (cx, cy, w, h) → image-relative (`correct_yolo_boxes`, relative=1)."""
    net_h, net_w = net_hw
    new_h, new_w = letterbox_size(image_hw, net_hw) if letterbox else (net_h, net_w)
    ratio_w, ratio_h = new_w / net_w, new_h / net_h
    out = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, 4)
    out[:, 0] = (out[:, 0] - (net_w - new_w) / 2.0 / net_w) / ratio_w
    out[:, 1] = (out[:, 1] - (net_h - new_h) / 2.0 / net_h) / ratio_h
    out[:, 2] /= ratio_w
    out[:, 3] /= ratio_h
    return out


def to_pixels(boxes: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Image-relative (cx, cy, w, h) → xyxy pixels, clipped to the image as Darknet's
    `print_cocos` does (0 ≤ x ≤ W, 0 ≤ y ≤ H)."""
    h, w = image_hw
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xyxy = np.stack([(b[:, 0] - b[:, 2] / 2) * w, (b[:, 1] - b[:, 3] / 2) * h,
                     (b[:, 0] + b[:, 2] / 2) * w, (b[:, 1] + b[:, 3] / 2) * h], axis=1)
    return np.clip(xyxy, 0.0, [w, h, w, h])
