"""`infertune predict`: what a model says about a few image files.

A classifier gives its top-k classes (names when the model or --labels knows them); a
detector (a handle with meta["detection"]: a Darknet cfg, or an ONNX file with its layout
given by --detector/--anchors or recognised) gives boxes — class, score, x1 y1 x2 y2 in
pixels of the original image — with Darknet's letterbox preprocessing (the spec's grey) or
its plain resize (letter_box=0), decoding and NMS (tasks/detection). The network runs
in-process (torch or ONNX Runtime) one image at a time: this command is for looking at
results, not for timing them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data.preprocess import apply_preprocess, resolve_preprocess
from ..data.sources import decode_image, read_labels_file
from ..errors import ConfigError, DataError, UnsupportedModel
from ..load import LoadOptions, load_model
from ..measure.inprocess import first_output, inprocess_runner, output_arrays
from ..tasks.detection.draw import draw_detections
from ..tasks.detection.letterbox import network_input
from ..tasks.detection.postprocess import detect
from ..types import ModelHandle
from .evaluate import looks_like_probabilities
from .options import PredictOptions

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def predict(model: str | ModelHandle, options: PredictOptions,
            load: LoadOptions = LoadOptions()) -> dict[str, Any]:
    """Runs `model` on each image; returns {"model", "task", "images": [...], "drawn"}.

    Raises:
        DataError: an image is missing or cannot be decoded. ConfigError: bad option values.
        UnsupportedModel: a detector whose heads have no decoder here.
    """
    o = options
    if o.top < 1:
        raise ConfigError(f"--top must be at least 1, not {o.top}")
    for name, value in (("score threshold", o.score_threshold), ("NMS threshold", o.nms_threshold)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be between 0 and 1, not {value}")
    paths = [_image_path(p) for p in o.images]
    handle = load_model(model, **vars(load))
    names = _class_names(handle, o.labels_file)
    runner = inprocess_runner(handle, o.threads or os.cpu_count() or 1, _fixed_batch(handle))
    try:
        if "detection" in handle.meta:
            rows, found = _detect(handle, paths, runner, names, o.score_threshold, o.nms_threshold)
        else:
            rows, found = _classify(handle, paths, runner, names, o.top), None
    finally:
        runner.close()
    drawn = _draw(paths, found, names, o.draw) if o.draw is not None else []
    task = "detection" if found is not None else "classification"
    return {"model": handle.name, "task": task, "images": rows, "drawn": drawn}


def _fixed_batch(handle: ModelHandle) -> int | None:
    static = handle.input_spec.shape[0]
    return static if isinstance(static, int) else None


def _image_path(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise DataError("is a directory, not an image file", path=text)
    if not path.is_file():
        raise DataError("no such image file", path=text)
    return path


def _class_names(handle: ModelHandle, labels_file: str | None) -> list[str] | None:
    if labels_file is not None:
        return read_labels_file(labels_file)
    names = handle.meta.get("class_names")
    return list(names) if names else None


def _pixels(path: Path, channels: int) -> np.ndarray:
    return decode_image(path, channels)


def _outputs(raw: Any) -> list[np.ndarray]:
    """Every output of one forward pass as float32 numpy, in order."""
    return [np.asarray(o, np.float32) for o in output_arrays(raw)]


def _detect(handle, paths, runner, names, score_threshold, nms_threshold):
    spec = handle.meta["detection"]
    if spec is None:
        raise UnsupportedModel(f"{handle.name}: its detection heads ([Gaussian_yolo] or "
                               "[detection]) have no decoder here")
    channels = handle.input_spec.chw[0]
    rows, found = [], []
    for path in paths:
        pixels = _pixels(path, channels)
        x = network_input(pixels, spec)[None]
        hw = (int(pixels.shape[1]), int(pixels.shape[2]))
        (dets,) = detect(_outputs(runner.run(np.ascontiguousarray(x))), spec, [hw],
                         score_threshold=score_threshold, nms_threshold=nms_threshold)
        found.append(dets)
        rows.append({"image": str(path), "size": list(hw), "detections": dets.to_list(names)})
    return rows, found


def _classify(handle, paths, runner, names, top: int) -> list[dict[str, Any]]:
    pre = resolve_preprocess(handle.meta.get("preprocess") or "imagenet")
    c, h, w = handle.input_spec.chw
    rows = []
    for path in paths:
        x = apply_preprocess(_pixels(path, c), pre, (h, w), name=str(path))[None]
        raw = runner.run(np.ascontiguousarray(x))
        _check_scores(handle, _outputs(raw))
        scores = first_output(raw, 1)[0].astype(np.float64)
        if not looks_like_probabilities(scores[None]):
            scores = np.exp(scores - scores.max())
            scores /= scores.sum()
        best = np.argsort(-scores, kind="stable")[:top]
        rows.append({"image": str(path), "preprocess": pre.name, "top": [
            {"class": names[i] if names and i < len(names) else str(int(i)), "class_id": int(i),
             "probability": round(float(scores[i]), 6)} for i in best]})
    return rows


def _check_scores(handle: ModelHandle, outputs: list[np.ndarray]) -> None:
    """One (1, K) or (1, K, 1, 1) output, else a user error saying why predict cannot read it."""
    first = outputs[0]
    if len(outputs) == 1 and (first.ndim <= 2 or first.shape[2:] == (1, 1)):
        return
    hint = (" (an ONNX detector: give its layout, --detector yolo --anchors W,H,... for raw "
            "per-head maps or --detector ultralytics for a (B, 4 + classes, N) tensor)"
            if handle.format == "onnx" else "")
    raise UnsupportedModel(f"{handle.name}: its outputs {[list(o.shape) for o in outputs]} are "
                           f"not class scores, and it carries no detection heads to decode{hint}")


def _draw(paths: list[Path], found, names, out: str) -> list[str]:
    """Writes each image with its boxes: to `out` itself for one image and an image suffix,
    else into the folder `out` as <stem>.png."""
    if found is None:
        raise ConfigError("--draw needs a detector (a classifier has no boxes to draw)")
    target = Path(out)
    single = len(paths) == 1 and target.suffix.lower() in IMAGE_SUFFIXES
    if not single:
        target.mkdir(parents=True, exist_ok=True)
    written, used = [], set()
    for path, dets in zip(paths, found):
        dest = target if single else target / f"{path.stem}.png"
        if dest in used:
            dest = target / f"{path.stem}-{len(used)}.png"
        used.add(dest)
        draw_detections(path, dets, names, dest)
        written.append(str(dest))
    return written
