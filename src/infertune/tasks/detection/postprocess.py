"""Network outputs → Detections per image: decode every head, correct the letterbox, NMS,
and list each (box, class) whose prob is above the score threshold, as Darknet's
`detector test` prints them (less boxes that lie wholly outside the image). Pure numpy;
the network is timed without any of this.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .decode import Candidates, correct_boxes, decode_region, decode_yolo, to_pixels
from .decode_ultralytics import decode_ultralytics
from .heads import DetectionSpec, Head, RegionHead, UltralyticsHead
from .nms import nms_sort
from .records import Detections


def _as_list(outputs, count: int) -> list[np.ndarray]:
    if isinstance(outputs, np.ndarray) or hasattr(outputs, "shape"):
        outputs = [outputs]
    arrays = [np.asarray(o) for o in outputs]
    if len(arrays) != count:
        raise ValueError(f"the detector has {count} heads but {len(arrays)} outputs were given")
    return arrays


def _decode(raw: np.ndarray, head: Head, net_hw: tuple[int, int], threshold: float
            ) -> Candidates:
    if isinstance(head, RegionHead):
        return decode_region(raw, head, threshold)
    if isinstance(head, UltralyticsHead):
        return decode_ultralytics(raw, head, net_hw, threshold)
    return decode_yolo(raw, head, net_hw, threshold)


def candidates(maps: Sequence[np.ndarray], spec: DetectionSpec, threshold: float) -> Candidates:
    """Every head's candidates for one image (maps: one (C, H, W) per head, or one
    (4 + classes, N) decoded tensor), network-relative."""
    parts = [_decode(raw, head, spec.input_hw, threshold) for raw, head in zip(maps, spec.heads)]
    return Candidates.concat(parts, spec.classes)


def detect_one(maps: Sequence[np.ndarray], spec: DetectionSpec, image_hw: tuple[int, int], *,
               score_threshold: float | None = None,
               nms_threshold: float | None = None) -> Detections:
    """Detections of one image from its head maps (one (C, H, W) array per head)."""
    thresh = spec.score_threshold if score_threshold is None else score_threshold
    nms = spec.nms_threshold if nms_threshold is None else nms_threshold
    found = candidates(maps, spec, thresh)
    boxes = correct_boxes(found.boxes, image_hw, spec.input_hw, spec.letterbox)
    last = spec.heads[-1]  # AlexeyAB takes the NMS kind from the network's last layer
    probs = found.probs
    if nms > 0:
        probs = nms_sort(boxes, found.objectness, probs, nms,
                         kind=getattr(last, "nms_kind", "default"),
                         beta=getattr(last, "beta_nms", 0.6))
    rows, classes = np.nonzero(probs > thresh)
    scores = probs[rows, classes]
    order = np.argsort(-scores, kind="stable")
    pixels = to_pixels(boxes[rows[order]], image_hw)
    # A box wholly outside the image clips to nothing: it shows no object, so it is dropped.
    solid = (pixels[:, 2] > pixels[:, 0]) & (pixels[:, 3] > pixels[:, 1])
    return Detections(pixels[solid], scores[order][solid], classes[order][solid],
                      tuple(int(v) for v in image_hw))


def detect(outputs, spec: DetectionSpec, image_hws: Sequence[tuple[int, int]], *,
           score_threshold: float | None = None,
           nms_threshold: float | None = None) -> list[Detections]:
    """Detections of each image of a batch.

    Args:
        outputs: the network's outputs, one (B, C, H, W) array per head (a single array for a
            one-head detector; (B, 4 + classes, N) for the Ultralytics layout), as torch or
            ONNX Runtime returns them.
        spec: the handle's meta["detection"].
        image_hws: (height, width) of each original image, in batch order.
        score_threshold / nms_threshold: instead of the spec's (Darknet's .25 / .45).
    """
    arrays = _as_list(outputs, len(spec.heads))
    if any(len(a) != len(image_hws) for a in arrays):
        raise ValueError(f"{len(image_hws)} image sizes for a batch of {len(arrays[0])}")
    return [detect_one([a[i] for a in arrays], spec, hw, score_threshold=score_threshold,
                       nms_threshold=nms_threshold) for i, hw in enumerate(image_hws)]


def output_arrays(raw) -> list[np.ndarray]:
    """A network's outputs (a tensor, an array, or a list/tuple of them) as float32 arrays."""
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    return [np.asarray(o.detach().cpu().numpy() if hasattr(o, "detach") else o, np.float32)
            for o in items]


def detect_batches(run: Callable, x: np.ndarray, image_hws: Sequence[tuple[int, int]],
                   spec: DetectionSpec, batch: int, *, fixed_batch: bool,
                   score_threshold: float) -> list[Detections]:
    """Detections of every network input of `x` (N, C, H, W), `batch` at a time through
    `run` (a fixed-batch runner gets the last batch padded with zeros, dropped after)."""
    out: list[Detections] = []
    for start in range(0, len(x), batch):
        chunk = np.ascontiguousarray(x[start:start + batch])
        n = len(chunk)
        if fixed_batch and n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), chunk.dtype)])
        maps = [o[:n] for o in output_arrays(run(chunk))]
        out += detect(maps, spec, image_hws[start:start + n], score_threshold=score_threshold)
    return out
