"""`infertune eval` for a detector: COCO mAP on labelled data (COCO JSON, YOLO folder, VOC
folder) with a bootstrap interval over images; with --reference also the paired mAP drop,
the "fidelity mAP" against the reference's own detections and the score shift. Without
labels (a plain image folder) only the fidelity part, which then needs --reference.

Images are letterboxed as Darknet does, run through the model in batches (in-process torch /
ONNX Runtime, or a runtime's session), and decoded with NMS outside the timed network at
Darknet's mAP threshold (.005, `validate_detector_map`); precision / recall / F1 are stated
at the model's deployed score threshold (.25).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import ConfigError, DataError
from ...types import ModelHandle
from .classes import class_mapping
from .records import DetectionSample, DetectionSet, Detections

MAP_SCORE_THRESHOLD = 0.005


def evaluate_detector(handle: ModelHandle, ref: ModelHandle | None, data: str, *,
                      limit: int | None, seed: int, batch_size: int, threads: int,
                      runtime: str | None, open_runner: Callable) -> dict[str, Any]:
    """The detection evaluation result (JSON-ready; module docstring). `open_runner` is
    measure.inprocess.open_runner, passed in by the eval command: running models is a layer
    above the task's own code (data, decoding, metrics)."""
    spec = handle.meta["detection"]
    if spec is None:
        raise ConfigError(f"{handle.name}: its heads have no decoder here")
    dataset = read_source(data)
    if dataset.format == "images" and ref is None:
        raise ConfigError(f"no labels in {data}: pass --reference MODEL to measure fidelity mAP")
    samples = _subset(dataset.samples, limit, seed)
    names = model_names(handle, spec.classes)
    labelled = dataset.format != "images"
    if labelled:
        samples = remap_classes(samples, class_mapping(dataset.names, names, str(data)))
    preds, run_info = _predict(handle, samples, runtime, threads, batch_size, open_runner)
    result: dict[str, Any] = {
        "task": "detection", "model": {"name": handle.name, "source": handle.source},
        "data": {"source": dataset.source, "format": dataset.format, "images": len(samples),
                 "boxes": int(sum(len(s.boxes) for s in samples))},
        "score_threshold": spec.score_threshold, "map_score_threshold": MAP_SCORE_THRESHOLD,
        **run_info, "threads": threads}
    if labelled:
        result["accuracy"] = _accuracy(samples, preds, names, spec.score_threshold, seed)
    if ref is not None:
        _check_reference(ref, spec)
        ref_preds, _ = _predict(ref, samples, None, threads, batch_size, open_runner)
        result.update(_versus(samples if labelled else None, ref, ref_preds, preds, names,
                              spec.score_threshold, seed))
    return result


def _check_reference(ref: ModelHandle, spec) -> None:
    other = ref.meta.get("detection")
    if other is None or other.classes != spec.classes:
        raise ConfigError(f"the reference {ref.name} must be a detector with the same "
                          f"{spec.classes} classes")


def plain_images(data: str) -> list[Path]:
    """The images directly in folder `data` when it is not a YOLO or VOC folder, else []."""
    from .data import IMAGE_SUFFIXES

    root = Path(data)
    if not root.is_dir() or (root / "labels").is_dir() or (root / "Annotations").is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_source(data: str) -> DetectionSet:
    """Labelled detection data (COCO/YOLO/VOC), or a plain image folder as format "images"
    (no boxes: only fidelity to a reference model can be measured on it)."""
    from .data import image_size, read_detection_data

    root = Path(data)
    images = plain_images(data)
    if not images:
        return read_detection_data(root)
    samples = tuple(DetectionSample(p, image_size(p), np.zeros((0, 4)), np.zeros(0, int), i)
                    for i, p in enumerate(images))
    return DetectionSet(samples, (), str(root), "images")


def _subset(samples: Sequence[DetectionSample], limit: int | None, seed: int):
    if limit is None or limit >= len(samples):
        return list(samples)
    if limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    chosen = np.sort(np.random.default_rng(seed).choice(len(samples), limit, replace=False))
    return [samples[i] for i in chosen]


def model_names(handle: ModelHandle, classes: int) -> list[str]:
    names = handle.meta.get("class_names")
    return list(names) if names and len(names) == classes else [str(k) for k in range(classes)]


def remap_classes(samples, mapping: list[int]) -> list[DetectionSample]:
    lookup = np.asarray(mapping, dtype=np.int64)
    return [DetectionSample(s.image, s.image_hw, s.boxes, lookup[s.classes] if len(s.classes)
                            else s.classes, s.image_id, s.crowd) for s in samples]


def _predict(handle: ModelHandle, samples, runtime: str | None, threads: int,
             batch_size: int, open_runner: Callable) -> tuple[list[Detections], dict[str, Any]]:
    """Detections per sample, and {runtime, batch_size, inference_s} (network time only)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="infertune-eval-") as workdir:
        runner = open_runner(handle, runtime, threads, batch_size, workdir)
        batch = runner.batch or batch_size
        try:
            preds, seconds = _run(runner, handle, samples, batch)
        finally:
            runner.close()
    return preds, {"runtime": runner.name, "batch_size": batch, "inference_s": round(seconds, 4)}


def _run(runner, handle: ModelHandle, samples, batch: int) -> tuple[list[Detections], float]:
    from ...data.sources import decode_image
    from .letterbox import network_input
    from .postprocess import detect, output_arrays

    spec, channels = handle.meta["detection"], handle.input_spec.chw[0]
    preds, seconds = [], 0.0
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        pixels = [decode_image(s.image, channels) for s in chunk]
        for s, p in zip(chunk, pixels):
            if tuple(p.shape[1:]) != tuple(s.image_hw):
                raise DataError(f"image is {p.shape[2]}×{p.shape[1]}, the labels say "
                                f"{s.image_hw[1]}×{s.image_hw[0]}", path=str(s.image))
        x = np.stack([network_input(p, spec) for p in pixels])
        if len(x) < batch and runner.batch:
            x = np.concatenate([x, np.zeros((batch - len(x), *x.shape[1:]), np.float32)])
        t0 = time.perf_counter()
        raw = runner.run(np.ascontiguousarray(x))
        seconds += time.perf_counter() - t0
        outputs = [o[:len(chunk)] for o in output_arrays(raw)]
        preds += detect(outputs, spec, [s.image_hw for s in chunk],
                        score_threshold=MAP_SCORE_THRESHOLD)
    return preds, seconds




def _accuracy(samples, preds, names, threshold: float, seed: int) -> dict[str, Any]:
    from .compare import bootstrap_map
    from .metrics import coco_scores

    scores = coco_scores(samples, preds, names, score_threshold=threshold)
    interval = bootstrap_map(samples, preds, len(names), seed=seed)
    d = scores.to_dict()
    d["per_class_ap"] = {k: v for k, v in d["per_class_ap"].items() if v is not None}
    return {**d, "map_ci": interval.to_dict()}


def _versus(samples, ref: ModelHandle, ref_preds, preds, names, threshold: float,
            seed: int) -> dict[str, Any]:
    from .compare import fidelity_map, paired_drop, score_shift

    out: dict[str, Any] = {"reference": {"name": ref.name, "source": ref.source}}
    if samples is not None:
        out["comparison"] = {"map_drop": paired_drop(samples, ref_preds, preds, len(names),
                                                     seed=seed).to_dict()}
    out["fidelity"] = {
        "fidelity_map": fidelity_map(ref_preds, preds, len(names), threshold=threshold,
                                     seed=seed).to_dict(),
        "score_shift": score_shift(ref_preds, preds, threshold=threshold).to_dict()}
    return out
