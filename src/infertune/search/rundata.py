"""The samples of a run, prepared once and saved in RUN_DIR/data as .npy files that every
candidate's child process memory-maps: eval (full evaluation; its first screen_n samples are
the screening set, so screening and full numbers are paired with the baseline's), calib
(INT8 calibration) and, where affordable, train (recovery after pruning or decomposition).

With a built-in set that has parts (`sample`, `clutter`), calibration and training come from
its `:train` part and evaluation from its `:val` part, disjoint. Otherwise (a folder, an
.npz, `photos`) one seeded stratified split of the data. `--data auto` is the zoo model's own
built-in set (`ZooEntry.data`: photos for the ImageNet models, clutter for ref-clutter),
`sample` for every other model (`photos` for a detector).

A detector (a handle with meta["detection"]) given detection data (COCO .json, YOLO or VOC
folder, plain image folder) gets letterboxed images (tasks/detection/rundata.py), its boxes
in eval_truth.npz when labelled, each evaluation image's size in eval_hw.npy and its
decoding spec in detection.json; from other data, images at the network's size.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path, write_text
from ..data import Dataset, load_dataset, split_calibration
from ..data.preprocess import resolve_preprocess
from ..errors import ConfigError
from ..tasks.detection.evaluate import model_names
from ..tasks.detection.examples import InputPixels
from ..tasks.detection.records import DetectionSample
from ..tasks.detection.rundata import DetectionParts, detection_parts
from ..tasks.detection.store import load_samples, save_samples

# Bounds on what one run keeps in memory and on disk, per part (float32 images).
# The training part feeds recovery after pruning. On ref-clutter (128×128) a 25% channel
# prune distilled on the 1,365 scenes a 256 MiB cap allowed (300 s) reached 89.4% top-1;
# on 4,000 scenes (600 s) 91.1%, the original's 90.7%. Longer training on more distinct
# images is what recovers a pruned model, so the cap is 1 GiB and 4,096 samples.
MAX_EVAL_BYTES = 1 << 30
MAX_TRAIN_BYTES = 1 << 30
TRAIN_SAMPLES = 4096
SETS_WITH_PARTS = ("sample", "clutter")  # built-in sets with disjoint :train and :val parts


def resolve_data(spec: str, handle) -> str:
    """The data spec a run uses: `auto` becomes the model's own built-in set (a detector
    without one: real photos, scored by fidelity mAP)."""
    if spec != "auto":
        return spec
    default = "photos" if handle.meta.get("detection") is not None else "sample"
    return handle.meta.get("default_data") or default


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def prepare(run_dir: Path, config, handle) -> dict[str, Any]:
    """Writes data/*.npy (or reuses them when data/info.json matches) and returns the info."""
    data_dir = run_dir / "data"
    chw = handle.input_spec.chw
    per_image = int(np.prod(chw)) * 4
    eval_n = max(1, min(config.eval_size, MAX_EVAL_BYTES // per_image))
    train_n = min(TRAIN_SAMPLES, MAX_TRAIN_BYTES // per_image)
    preprocess = config.preprocess or handle.meta.get("preprocess", "darknet")
    spec = resolve_data(config.data, handle)
    want = {"data": spec, "shape": list(chw), "preprocess": preprocess, "eval_n": eval_n,
            "calib": config.calib_size, "train_n": train_n, "seed": config.seed}
    det = handle.meta.get("detection")
    if det is not None:
        want["task"] = "detection"
    info_path = data_dir / "info.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("request") == want:
            return info
    parts, extra = _parts(spec, config, handle, chw, preprocess, eval_n, train_n)
    ev = parts["eval"]
    for name, ds in parts.items():
        _save(data_dir / f"{name}_x.npy", np.ascontiguousarray(ds.x, dtype=np.float32))
        if ds.y is not None and det is None:  # a detector's labels are boxes (eval_truth)
            _save(data_dir / f"{name}_y.npy", np.asarray(ds.y, dtype=np.int64))
    clustered = ev.groups is not None and det is None
    if clustered:
        _save(data_dir / GROUPS, np.asarray(ev.groups, dtype=np.int64))
    else:  # a previous request's clusters must not outlive it
        (data_dir / GROUPS).unlink(missing_ok=True)
    labelled = ev.y is not None
    if det is not None:
        labelled = _save_detection(data_dir, handle, extra, len(ev), preprocess)
    info = {"request": want, "spec": spec, "labelled": labelled, "eval_n": len(ev),
            "calib_n": len(parts["calib"]),
            "train_n": len(parts["train"]) if "train" in parts else 0,
            "screen_n": min(config.screen_size, len(ev)), "description": ev.description,
            "eval_clusters": len(np.unique(ev.groups)) if clustered else None,
            "class_names": list(ev.class_names)[:1000], "preprocess": str(preprocess),
            **({"task": "detection", "classes": det.classes,
                 "score_threshold": det.score_threshold} if det is not None else {})}
    write_text(info_path, json.dumps(info))
    return info


def _parts(spec: str, config, handle, chw, preprocess, eval_n: int, train_n: int):
    """{"eval", "calib"[, "train"]} Datasets, and the detection parts when `spec` is
    detection data for a detector (its images letterboxed)."""
    if handle.meta.get("detection") is not None:
        found = detection_parts(spec, handle, eval_n=eval_n, calib_n=config.calib_size,
                                seed=config.seed)
        if found is not None:
            pre = resolve_preprocess("none")
            ev = Dataset(found.eval_x, None, [], found.description, pre)
            cal = Dataset(found.calib_x, None, [], "calibration images", pre)
            return {"eval": ev, "calib": cal,
                    **({"train": cal} if len(cal) >= 64 else {})}, found
    common = dict(input_shape=chw, preprocess=preprocess, seed=config.seed)
    if spec in SETS_WITH_PARTS:
        ev = load_dataset(f"{spec}:val", limit=eval_n, **common)
        cal = load_dataset(f"{spec}:train", limit=max(config.calib_size, train_n), **common)
        train = cal if train_n >= 64 else None
        cal = cal.subset(np.arange(min(config.calib_size, len(cal))), "calibration part")
    else:
        ds = load_dataset(spec, limit=eval_n + config.calib_size, **common)
        if len(ds) < 3:
            raise ConfigError(f"--data {spec}: {len(ds)} sample(s); optimize needs at "
                              "least 3 (calibration and evaluation)")
        cal, ev = split_calibration(ds, min(config.calib_size, len(ds) // 2), config.seed)
        train = cal if train_n >= 64 else None
    return {"eval": ev, "calib": cal, **({"train": train} if train is not None else {})}, None


def _save_detection(data_dir: Path, handle, found: DetectionParts | None, eval_n: int,
                    preprocess) -> bool:
    """detection.json (the decoding spec and class names, read by the workers; how the
    evaluation inputs were made, read by the report's example images), each evaluation
    image's size (eval_hw.npy) and, with labels, the boxes (eval_truth.npz). Images not
    from detection data were made at the network's size by `preprocess`. Returns: labelled."""
    det = handle.meta["detection"]
    names = model_names(handle, det.classes)
    pre = resolve_preprocess(preprocess)
    pixels = InputPixels(det.letterbox) if found is not None \
        else InputPixels(False, pre.mean, pre.std)
    write_text(data_dir / DETECTION_SPEC, json.dumps(
        {"spec": det.to_dict(), "names": names, "eval_inputs": pixels.to_dict()}))
    hw = ([s.image_hw for s in found.eval_samples] if found is not None
          else [det.input_hw] * eval_n)
    _save(data_dir / "eval_hw.npy", np.asarray(hw, np.int64).reshape(-1, 2))
    if found is not None and found.labelled:
        save_samples(data_dir / TRUTH, found.eval_samples)
        return True
    return False


DETECTION_SPEC = "detection.json"
TRUTH = "eval_truth.npz"


GROUPS = "eval_groups.npy"


def groups(run_dir: Path) -> np.ndarray | None:
    """The cluster of each evaluation sample (several scenes of one `clutter:val` digit),
    or None when the samples are independent."""
    path = run_dir / "data" / GROUPS
    return np.load(path) if path.exists() else None


def labels(run_dir: Path) -> np.ndarray | list[DetectionSample] | None:
    """The evaluation labels: class indices, a detector's boxes per image, or None."""
    truth = run_dir / "data" / TRUTH
    if truth.exists():
        return load_samples(truth)
    path = run_dir / "data" / "eval_y.npy"
    return np.load(path) if path.exists() else None
