"""The images of an optimize run on a detector, when `--data` is detection data.

`--data` a COCO .json, a YOLO folder or a Pascal VOC folder gives labelled images (classes
mapped to the model's names by `classes.class_mapping`); a plain folder of images gives
unlabelled ones (the search then measures fidelity mAP). Calibration and evaluation images
are disjoint, drawn with the run's seed; both are made as the model's DetectionSpec says
(letterbox, or stretch for a `letter_box=0` cfg), so calibration sees what deployment
sees. The built-in set `digits-det` (data_digits.py) calibrates on its `:train` part and
evaluates on its `:val` part, as the classification sets with parts do;
`digits-det:train`/`:val` alone are split like any labelled set. Other specs (`photos`,
`sample`, .npz) are not detection data: the search loads them as images at the network's
size (`None` here).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from ...types import ModelHandle
from .classes import class_mapping
from .data import read_detection_data
from .data_digits import is_digits_det
from .evaluate import model_names, plain_images, read_source, remap_classes
from .records import DetectionSample
from .store import network_inputs


@dataclass(frozen=True)
class DetectionParts:
    """Letterboxed calibration and evaluation inputs, and what decoding and scoring need.

    Attributes:
        calib_x / eval_x: (N, C, H, W) float32 network inputs.
        eval_samples: the evaluation images with their boxes (none when unlabelled).
        labelled: the data has boxes. description: one line for the report.
    """

    calib_x: np.ndarray
    eval_x: np.ndarray
    eval_samples: list[DetectionSample]
    labelled: bool
    description: str


def is_detection_source(spec: str) -> bool:
    """The built-in detection set, a COCO .json, YOLO or VOC folder, or a plain image folder."""
    if is_digits_det(spec):
        return True
    root = Path(spec)
    return (root.is_file() and root.suffix.lower() == ".json") or \
        (root.is_dir() and ((root / "labels").is_dir() or (root / "Annotations").is_dir()
                            or bool(plain_images(spec))))


def detection_parts(spec: str, handle: ModelHandle, *, eval_n: int, calib_n: int,
                    seed: int) -> DetectionParts | None:
    """The run's detection images from `spec` (module docstring), None when `spec` is not
    detection data."""
    if not is_detection_source(spec):
        return None
    det = handle.meta["detection"]
    if spec == "digits-det":
        cal, _ = _labelled(f"{spec}:train", handle)
        ev, dataset = _labelled(f"{spec}:val", handle)
        cal, ev = _seeded(cal, calib_n, seed), _seeded(ev, eval_n, seed)
        labelled, parts = True, "; calibration from its :train part, evaluation from :val"
    else:
        samples, dataset = _labelled(spec, handle)
        labelled, parts = dataset.format != "images", ""
        if len(samples) < 3:
            raise ConfigError(f"--data {spec}: {len(samples)} image(s); optimize needs at "
                              "least 3 (calibration and evaluation)")
        order = np.random.default_rng(seed).permutation(len(samples))
        n_cal = max(1, min(calib_n, len(samples) // 2))
        cal = [samples[i] for i in order[:n_cal]]
        ev = [samples[i] for i in sorted(order[n_cal:n_cal + eval_n])]
    channels = handle.input_spec.chw[0]
    what = f"{dataset.format} {'labelled' if labelled else 'unlabelled'}{parts}"
    return DetectionParts(
        calib_x=network_inputs(cal, det, channels),
        eval_x=network_inputs(ev, det, channels), eval_samples=ev, labelled=labelled,
        description=f"{spec} ({what}): {len(ev)} evaluation + {len(cal)} calibration images "
                    f"(disjoint, seed {seed}), {'letterboxed' if det.letterbox else 'resized'}"
                    f" to {det.input_hw[1]}×{det.input_hw[0]}")


def _labelled(spec: str, handle: ModelHandle) -> tuple[list[DetectionSample], object]:
    """The samples of `spec` (classes mapped to the model's names when labelled), and the set."""
    det = handle.meta["detection"]
    dataset = read_source(spec) if plain_images(spec) else read_detection_data(spec)
    samples = list(dataset.samples)
    if dataset.format != "images":
        mapping = class_mapping(dataset.names, model_names(handle, det.classes), spec)
        samples = remap_classes(samples, mapping)
    return samples, dataset


def _seeded(samples: list[DetectionSample], n: int, seed: int) -> list[DetectionSample]:
    """`n` of `samples` drawn with `seed`, in their original order."""
    keep = np.random.default_rng(seed).permutation(len(samples))[:n]
    return [samples[i] for i in sorted(keep)]
