"""An Ultralytics-style decoded output → candidate boxes (numpy, outside the timed network).

YOLOv8/v11 ONNX exports end in the decoded tensor (B, 4 + classes, N): per box cx, cy, w, h
in input pixels, then each class's score (sigmoid already applied, no objectness). What is
left to do is Ultralytics' `non_max_suppression`: keep boxes whose best score is above the
threshold, then NMS class by class. The candidates here feed the same `nms_sort` as Darknet's
heads (`postprocess.detect_one`), whose per-class walk is torchvision's `nms` per class —
Ultralytics' `batched_nms` with class offsets — with the same IoU. Every class above the
threshold is kept for a box (Ultralytics' `multi_label=True`, which its val uses, and what
Darknet does); its predict keeps only the best class, which differs only when two classes of
one box are both above the threshold.
"""
from __future__ import annotations

import numpy as np

from .decode import Candidates
from .heads import UltralyticsHead


def decode_ultralytics(raw: np.ndarray, head: UltralyticsHead, net_hw: tuple[int, int],
                       threshold: float) -> Candidates:
    """Candidates of one image's (4 + classes, N) tensor whose best class score is above
    `threshold`, boxes relative to the network input; `objectness` is that best score (the
    layout has none: NMS only needs it non-zero)."""
    t = np.asarray(raw, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != 4 + head.classes:
        raise ValueError(f"output {head.output} must be (4 + {head.classes}, N) per image, "
                         f"got {t.shape}")
    net_h, net_w = net_hw
    boxes = t[:4].T / np.array([net_w, net_h, net_w, net_h], dtype=np.float64)
    scores = t[4:].T
    best = scores.max(axis=1) if len(scores) else np.zeros(0)
    keep = best > threshold  # Ultralytics: `amax(scores) > conf_thres`
    probs = scores[keep]
    return Candidates(boxes[keep], best[keep], np.where(probs > threshold, probs, 0.0))
