"""Data for calibration and evaluation: load a dataset, preprocess it, split it.

    ds = load_dataset("sample", input_shape=(3, 448, 448), limit=500)
    calib, val = split_calibration(ds, 100, seed=0)

A dataset spec is ``sample`` (the built-in labelled digits), an image folder with one
sub-folder per class (or images directly, unlabelled), or an ``.npz`` with ``x`` and ``y``.
The word ``sample`` always means the built-in set; write ``./sample`` for a folder of
that name. ``sample:train`` and ``sample:val`` are its fixed 80/20 split (stratified, seed 0:
4,000 and 1,000 digits): the trained reference models (`ref-small`, `ref-large`) learned from
``sample:train`` only, so ``sample:val`` measures them on digits they never saw.

``photos`` (``photos:N`` for N views, default 1152) is the built-in real-photo set: augmented
views of the photographs that scikit-image, scikit-learn and matplotlib ship, unlabelled, for
calibration and fidelity of ImageNet models (photo_views.py); ``./photos`` is a folder.

``clutter:train`` / ``clutter:val`` are the sample digits of each part at random scale and
place among digit fragments on real photos, 128×128, labelled (clutter.py; `ref-clutter`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import Dataset, choose
from .photo_views import is_photos_spec, read_photo_views
from .preprocess import PRESETS, Preprocess, apply_preprocess, resolve_preprocess
from .sources import ArraySource, decode_image, list_folder, read_labels_file, read_npz, read_sample

# Refuse datasets whose preprocessed array would exceed this (see dataset.py for why).
DEFAULT_MAX_BYTES = 8 * 2**30
_CHUNK = 64  # samples preprocessed at once: bounds the float temporaries of a batch

# The built-in set's fixed split (see the module docstring); never change it: the shipped
# reference models' recorded accuracies are measured on this exact `val` part.
SAMPLE_PARTS = ("sample:train", "sample:val")
SAMPLE_TRAIN_FRACTION = 0.8
SAMPLE_SPLIT_SEED = 0

__all__ = ["Dataset", "Preprocess", "PRESETS", "load_dataset", "split_calibration",
           "resolve_preprocess", "DEFAULT_MAX_BYTES", "SAMPLE_PARTS"]


def load_dataset(spec: str, *, input_shape: tuple[int, int, int],
                 preprocess: str | Preprocess = "darknet", labels_file: str | Path | None = None,
                 limit: int | None = None, seed: int = 0, skip_bad: bool = False,
                 num_classes: int | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Dataset:
    """Loads and preprocesses a dataset into memory.

    Args:
        spec: "sample" (or its fixed part "sample:train" / "sample:val"), "photos" or
            "photos:N" (real photos, unlabelled), an image folder, or an .npz file.
        input_shape: the model's (C, H, W).
        preprocess: a preset name ("darknet", "imagenet", "none"), "preset,key=value,..."
            overrides, or a Preprocess.
        labels_file: one class name per line (Darknet's imagenet.labels.list); class folder
            names are looked up in it and an .npz takes its class names from it.
        limit: keep at most this many samples (seeded; stratified when labelled).
        seed: seed for `limit`.
        skip_bad: leave bad samples out (listed in `Dataset.skipped`) instead of raising.
        num_classes: the model's class count; labels at or beyond it are bad data.
        max_bytes: refuse if the float32 array would be larger than this.

    Raises:
        DataError: missing or unreadable data, bad samples (without skip_bad).
        ConfigError: bad input shape, preprocessing, limit, or a dataset too large.
    """
    shape, pre = _check_options(input_shape, preprocess, limit)
    label_names = read_labels_file(labels_file) if labels_file is not None else None
    if is_photos_spec(spec):
        if labels_file is not None:
            raise ConfigError("labels_file applies to image folders and .npz files, not 'photos'")
        source = read_photo_views(spec, shape[0], shape[1:])
        return _from_arrays(source, spec, shape, pre, limit, seed, max_bytes)
    if spec == "sample" or spec in SAMPLE_PARTS:
        if labels_file is not None:
            raise ConfigError("labels_file applies to image folders and .npz files, not 'sample'")
        source = read_sample(shape[0])
        if spec != "sample":
            source = sample_part(source, spec.partition(":")[2])
        return _from_arrays(source, spec, shape, pre, limit, seed, max_bytes)
    if spec.startswith("clutter:"):  # built-in digits-in-clutter parts (data/clutter.py)
        from .clutter import read_clutter

        if labels_file is not None:
            raise ConfigError("labels_file applies to image folders and .npz files, not clutter")
        source = read_clutter(spec, shape[0], limit, seed)  # renders only the `limit` chosen
        return _from_arrays(source, spec, shape, pre, None, seed, max_bytes)
    path = Path(spec)
    if not path.exists():
        raise DataError("no such file or directory", path=spec)
    common = dict(label_names=label_names, num_classes=num_classes, skip_bad=skip_bad)
    if path.is_dir():
        return _from_folder(path, spec, shape, pre, labels_file, limit, seed, max_bytes, **common)
    if path.suffix.lower() == ".npz":
        source = read_npz(path, channels=shape[0], **common)
        return _from_arrays(source, spec, shape, pre, limit, seed, max_bytes)
    raise DataError("not a dataset: expected a folder of class sub-folders, an .npz file "
                    "or 'sample'", path=spec)


def split_calibration(dataset: Dataset, n_calib: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Splits into disjoint calibration and validation parts (seeded, stratified if labelled).

    Raises:
        ConfigError: n_calib < 1 or leaves no sample for validation.
    """
    n = len(dataset)
    if not 1 <= n_calib < n:
        raise ConfigError(f"n_calib must be between 1 and {n - 1} for a dataset of {n} "
                          f"samples, not {n_calib}")
    calib = choose(n, n_calib, dataset.y, seed)
    val = np.setdiff1d(np.arange(n), calib)
    return (dataset.subset(calib, f"calibration part: {len(calib)} (seed {seed})"),
            dataset.subset(val, f"validation part: {len(val)} (seed {seed})"))


def sample_part(source: ArraySource, part: str) -> ArraySource:
    """The "train" or "val" part of the built-in set (stratified 80/20, seed 0).

    The split depends only on the labels, so it is the same at every input shape.
    """
    n = len(source.x)
    n_train = int(round(SAMPLE_TRAIN_FRACTION * n))
    train = choose(n, n_train, source.y, SAMPLE_SPLIT_SEED)
    keep = train if part == "train" else np.setdiff1d(np.arange(n), train)
    note = (f"part '{part}': {len(keep)} of {n} (fixed stratified {SAMPLE_TRAIN_FRACTION:.0%}/"
            f"{1 - SAMPLE_TRAIN_FRACTION:.0%} split, seed {SAMPLE_SPLIT_SEED})")
    return ArraySource(source.x[keep], source.y[keep], source.class_names,
                       [source.ids[i] for i in keep], f"{source.description}; {note}")


def _check_options(input_shape, preprocess, limit) -> tuple[tuple[int, int, int], Preprocess]:
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}")
    return _check_shape(input_shape), resolve_preprocess(preprocess)


def _check_shape(input_shape) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be (C, H, W), not {input_shape!r}") from None
    if min(c, h, w) < 1:
        raise ConfigError(f"input_shape must be positive, not {input_shape!r}")
    return c, h, w


def _check_memory(n: int, shape: tuple[int, int, int], max_bytes: int) -> None:
    per_sample = 4 * shape[0] * shape[1] * shape[2]
    if n * per_sample > max_bytes:
        fits = max(1, max_bytes // per_sample)
        raise ConfigError(f"{n} samples of {shape[0]}×{shape[1]}×{shape[2]} float32 would take "
                          f"{n * per_sample / 2**30:.1f} GiB in memory; pass limit={fits} "
                          f"or less (the limit is {max_bytes / 2**30:.1f} GiB)")


def _limit_note(n_total: int, n: int, limit: int | None, labelled: bool, seed: int) -> str:
    if limit is None or limit >= n_total:
        return ""
    how = "stratified" if labelled else "random"
    return f"; limit {n} of {n_total} ({how}, seed {seed})"


def _from_arrays(source: ArraySource, spec: str, shape: tuple[int, int, int], pre: Preprocess,
                 limit: int | None, seed: int, max_bytes: int) -> Dataset:
    n_total = len(source.x)
    if n_total == 0:
        raise DataError("no usable samples", path=spec)
    keep = choose(n_total, limit or n_total, source.y, seed)
    _check_memory(len(keep), shape, max_bytes)
    out = np.empty((len(keep), *shape), dtype=np.float32)
    for start in range(0, len(keep), _CHUNK):
        rows = keep[start:start + _CHUNK]
        out[start:start + len(rows)] = apply_preprocess(source.x[rows], pre, shape[1:], name=spec)
    desc = (f"{source.description}; preprocessed '{pre.name}' to {shape[0]}×{shape[1]}×{shape[2]}"
            f"{_limit_note(n_total, len(keep), limit, source.y is not None, seed)}")
    return Dataset(out, None if source.y is None else source.y[keep], source.class_names, desc,
                   pre, list(source.skipped), [source.ids[i] for i in keep], spec,
                   None if source.groups is None else source.groups[keep])


def _from_folder(root: Path, spec: str, shape: tuple[int, int, int], pre: Preprocess,
                 labels_file, limit: int | None, seed: int, max_bytes: int, *,
                 label_names, num_classes, skip_bad: bool) -> Dataset:
    if shape[0] not in (1, 3):
        raise ConfigError(f"image folders give 1 (grey) or 3 (RGB) channels; the model takes {shape[0]}")
    listing = list_folder(root, labels_file=labels_file, label_names=label_names,
                          num_classes=num_classes, skip_bad=skip_bad)
    n_total = len(listing.files)
    keep = choose(n_total, limit or n_total, listing.labels, seed)
    _check_memory(len(keep), shape, max_bytes)
    out = np.empty((len(keep), *shape), dtype=np.float32)
    good, skipped = [], list(listing.skipped)
    for i in keep:
        path = listing.files[i]
        try:
            out[len(good)] = apply_preprocess(decode_image(path, shape[0])[None], pre, shape[1:],
                                              name=str(path))[0]
        except DataError as exc:
            if not skip_bad:
                raise
            skipped.append((str(path), str(exc)))
            continue
        good.append(int(i))
    if not good:
        raise DataError(f"no usable images ({len(skipped)} skipped)", path=spec)
    labels = None if listing.labels is None else listing.labels[good]
    desc = _folder_description(root, listing, len(good), shape, pre,
                               _limit_note(n_total, len(keep), limit, labels is not None, seed))
    return Dataset(out[:len(good)].copy() if len(good) < len(keep) else out, labels,
                   listing.class_names, desc, pre, skipped,
                   [str(listing.files[i]) for i in good], spec)


def _folder_description(root: Path, listing, n: int, shape, pre: Preprocess, note: str) -> str:
    classes = (f"{len(set(listing.labels.tolist()))} classes (order: {listing.order})"
               if listing.labels is not None else listing.order)
    ignored = f", {listing.ignored} non-image files ignored" if listing.ignored else ""
    return (f"image folder {root}: {n} images, {classes}{ignored}; preprocessed "
            f"'{pre.name}' to {shape[0]}×{shape[1]}×{shape[2]}{note}")
