"""End-to-end timing of a detector: from an image file on disk to its boxes.

One timed call = read + decode the file (Pillow), letterbox (or stretch) it to the network's input
(`tasks.detection.letterbox`, Darknet's `letterbox_image` or `resize_image`), run the session at batch 1, then
decode every head, correct the letterbox and NMS (`tasks.detection.postprocess.detect`):
the functions `infertune predict` calls, in the same order, so the boxes are the ones
`predict` prints for that image. Beside that loop, in the same child, session and minutes
of machine time, the two parts outside the network are timed on their own:

- preprocess: read + letterbox, over the same files in the same order;
- postprocess: decode + NMS on the network's real outputs for the first images (taken once,
  untimed, before the loops; copied, because some runtimes reuse their output buffers).

The network alone is the harness's model-only loop that ran just before (a seeded input at
batch 1). The files cycle in a fixed order; after the first pass they are in the page cache.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.sources import decode_image
from ..errors import UnsupportedModel
from ..tasks.detection.heads import DetectionSpec
from ..tasks.detection.letterbox import network_input
from ..tasks.detection.postprocess import detect
from ..tasks.detection.records import Detections
from ..types import ModelHandle
from . import stats, timing
from .inprocess import output_arrays

# Outputs kept for the decode + NMS loop: enough images that one image's box count does not
# decide the time, few enough to hold (a 608×608 YOLOv3 returns 7 MiB per image).
POSTPROCESS_IMAGES = 16


def make_detection_spec(images: list[str], handle: ModelHandle) -> dict[str, Any]:
    """The job's "e2e" entry for a detector (JSON-ready): files, input, decoding parameters.

    Raises:
        UnsupportedModel: a detector whose heads have no decoder here.
    """
    spec = handle.meta["detection"]
    if spec is None:
        raise UnsupportedModel(f"{handle.name}: its detection heads ([Gaussian_yolo] or "
                               "[detection]) have no decoder here, so --e2e cannot time them")
    names = handle.meta.get("class_names")
    return {"task": "detection", "images": list(images),
            "preprocess": "letterbox" if spec.letterbox else "stretch",
            "shape": [int(d) for d in handle.input_spec.chw], "detection": spec.to_dict(),
            "class_names": list(names) if names else None}


class ImageToBoxes:
    """Callable timed by the harness: next file -> letterboxed -> network -> boxes; its
    `preprocess_next` and `postprocess_next` are the parts timed on their own."""

    def __init__(self, session, spec: dict[str, Any]):
        self.session = session
        self.paths = [Path(p) for p in spec["images"]]
        self.channels = int(spec["shape"][0])
        self.det = DetectionSpec.from_dict(spec["detection"])
        self.names = spec.get("class_names")
        self.kept: list[tuple[list[np.ndarray], tuple[int, int]]] = []
        self.calls = {"e2e": 0, "pre": 0, "post": 0}

    def _next(self, loop: str) -> int:
        k = self.calls[loop]
        self.calls[loop] = k + 1
        return k

    def preprocess(self, path: Path) -> tuple[np.ndarray, tuple[int, int]]:
        """(1, C, H, W) network input and the image's (height, width)."""
        pixels = decode_image(path, self.channels)
        x = network_input(pixels, self.det)[None]
        return np.ascontiguousarray(x), (int(pixels.shape[1]), int(pixels.shape[2]))

    def network(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(o, np.float32) for o in output_arrays(self.session.run(x))]

    def postprocess(self, outputs: list[np.ndarray], image_hw: tuple[int, int]) -> Detections:
        (found,) = detect(outputs, self.det, [image_hw])
        return found

    def __call__(self, _unused: Any = None) -> Detections:
        x, hw = self.preprocess(self.paths[self._next("e2e") % len(self.paths)])
        return self.postprocess(self.network(x), hw)

    def preprocess_next(self, _unused: Any = None) -> np.ndarray:
        return self.preprocess(self.paths[self._next("pre") % len(self.paths)])[0]

    def postprocess_next(self, _unused: Any = None) -> Detections:
        outputs, hw = self.kept[self._next("post") % len(self.kept)]
        return self.postprocess(outputs, hw)

    def keep_outputs(self, count: int = POSTPROCESS_IMAGES) -> list[Detections]:
        """Runs the first `count` files once (untimed: also the first calls and imports) and
        keeps their outputs for `postprocess_next`; returns their detections."""
        found = []
        for path in self.paths[:count]:
            x, hw = self.preprocess(path)
            outputs = [np.array(o, copy=True) for o in self.network(x)]
            self.kept.append((outputs, hw))
            found.append(self.postprocess(outputs, hw))
        return found


def run_e2e_detection(session, spec: dict[str, Any], timing_config,
                      model_p50_ms: float | None) -> dict[str, Any]:
    """Times ImageToBoxes, then its preprocessing and its decode + NMS alone; returns the
    result's "e2e" block."""
    fn = ImageToBoxes(session, spec)
    found = fn.keep_outputs()
    end_to_end = stats.latency_summary(timing.time_calls(fn, None, timing_config))
    pre = stats.latency_summary(timing.time_calls(fn.preprocess_next, None, timing_config))
    post = stats.latency_summary(timing.time_calls(fn.postprocess_next, None, timing_config))
    added = end_to_end["p50"] - model_p50_ms if model_p50_ms is not None else None
    return {"task": "detection", "latency_ms": end_to_end, "preprocess_ms": pre,
            "postprocess_ms": post, "images": len(fn.paths), "postprocess_images": len(fn.kept),
            "preprocess": {"name": "letterbox" if fn.det.letterbox else "stretch",
                           "input_hw": list(fn.det.input_hw)},
            "score_threshold": fn.det.score_threshold, "nms_threshold": fn.det.nms_threshold,
            "model_only_p50_ms": model_p50_ms, "added_p50_ms": added,
            "boxes_per_image": float(np.mean([len(d.scores) for d in found])),
            "first_image": str(fn.paths[0]), "first_detections": found[0].to_list(fn.names)}
