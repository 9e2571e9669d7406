"""The built-in real-photo set, ``--data photos`` / ``photos:N``: augmented views of the
photographs that installed packages ship (infertune.data.photos), for calibration and for
fidelity of ImageNet-style models.

It has **no labels**: nobody labelled these photos with ImageNet classes, and inventing
labels would turn agreement with the float model into a fake accuracy. Evaluate it with a
reference model (top-1 agreement, cosine, KL); calibrate on it. The views are distinct
inputs but come from 15 photos, so they are not independent draws from a user's data:
an interval computed over views describes these views, not the model on other photos.

Views are made deterministically (seed 0, whatever the run's seed, so that every run and
machine sees the same pixels):

* the first views are the whole photos, one each, in the fixed photo order: the largest
  central region with the view's aspect ratio, no flip;
* the others cycle through the photos, each a random resized crop (area 25–100% of the
  photo, aspect ratio log-uniform in 3/4–4/3 around the view's) flipped left-right with
  probability ½ — the usual training-time augmentation, which gives many distinct inputs
  from few photos.

Each view is resized (Pillow bilinear, antialiased) to 8/7 × the model's input size (256 for
224), the size an ImageNet evaluation resizes to before its centre crop, and is returned as
raw uint8 pixels: the model's preprocessing preset (`imagenet`, `darknet`, ...) is applied
afterwards exactly as for an image folder.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import ConfigError
from .photos import Photo, real_photos
from .sources import ArraySource

# Enough for `optimize`'s default evaluation (1000) and calibration (128) parts; an
# accuracy budget of 1 point cannot be shown on fewer than ~400 evaluation samples.
DEFAULT_VIEWS = 1152
MAX_VIEWS = 100_000
VIEW_SEED = 0
SCALE = (0.25, 1.0)
RATIO = (3 / 4, 4 / 3)
RESIZE_RATIO = 256 / 224


def parse_views(spec: str) -> int:
    """The view count of "photos" (DEFAULT_VIEWS) or "photos:N".

    Raises:
        ConfigError: N is not an integer between 1 and MAX_VIEWS.
    """
    _, sep, count = spec.partition(":")
    if not sep:
        return DEFAULT_VIEWS
    try:
        n = int(count)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_VIEWS:
        raise ConfigError(f"'{spec}': the view count must be an integer from 1 to {MAX_VIEWS}")
    return n


def is_photos_spec(spec: str) -> bool:
    return spec == "photos" or spec.startswith("photos:")


def read_photo_views(spec: str, channels: int, input_hw: tuple[int, int]) -> ArraySource:
    """The views of `spec` as uint8 N×C×h×w, h×w = 8/7 × `input_hw` (see the module docstring).

    Raises:
        ConfigError: a bad view count, or a model that takes neither 1 nor 3 channels.
        DataError: a package holding the photos is not installed.
    """
    if channels not in (1, 3):
        raise ConfigError(f"the real-photo set is RGB; it fits models with 1 or 3 input "
                          f"channels, not {channels}")
    n = parse_views(spec)
    photos = real_photos()
    view_hw = tuple(int(math.ceil(RESIZE_RATIO * s)) for s in input_hw)
    rng = np.random.default_rng(VIEW_SEED)
    x = np.empty((n, channels, *view_hw), dtype=np.uint8)
    ids = []
    for i in range(n):
        photo = photos[i % len(photos)]
        box, flip = (_whole(photo, view_hw), False) if i < len(photos) else _random_crop(
            rng, photo, view_hw)
        x[i] = _render(photo, box, flip, view_hw, channels)
        ids.append(f"photos[{i}]:{photo.name}")
    return ArraySource(x, None, [], ids, describe(photos, n, view_hw))


def describe(photos: list[Photo], n: int, view_hw: tuple[int, int]) -> str:
    """The data set's description: what it is, how it was made, every file and licence."""
    files = ", ".join(f"{p.package} {p.path.rsplit('/', 1)[-1]} ({short_licence(p)})"
                      for p in photos)
    return (f"photos: {n} views of {len(photos)} real photographs shipped by installed "
            f"packages, unlabelled (fidelity data: compare with a reference model); the first "
            f"{min(n, len(photos))} are the whole photos, the rest random resized crops (area "
            f"{SCALE[0]:.0%}–{SCALE[1]:.0%}, aspect {RATIO[0]:.2f}–{RATIO[1]:.2f}) with random "
            f"horizontal flips, seed {VIEW_SEED}, resized to {view_hw[0]}×{view_hw[1]}; "
            f"files: {files} (licences as each package documents them: "
            f"infertune.data.photos)")


def short_licence(photo: Photo) -> str:
    """The licence without where it is documented ("CC0", "CC BY 2.0", "public domain")."""
    return photo.licence.split(";")[0].split(" by ")[0].split(" (")[0].split(",")[0]


@functools.lru_cache(maxsize=32)
def _pixels(photo: Photo) -> np.ndarray:
    return photo.pixels()


def _size(photo: Photo) -> tuple[int, int]:
    h, w = _pixels(photo).shape[:2]
    return h, w


def _whole(photo: Photo, view_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest central box with the view's aspect ratio: (left, top, right, bottom)."""
    h, w = _size(photo)
    aspect = view_hw[1] / view_hw[0]
    bw, bh = (w, w / aspect) if w / h <= aspect else (h * aspect, h)
    left, top = (w - bw) / 2, (h - bh) / 2
    return left, top, left + bw, top + bh


def _random_crop(rng: np.random.Generator, photo: Photo,
                 view_hw: tuple[int, int]) -> tuple[tuple[float, float, float, float], bool]:
    """A random box (area fraction in SCALE, aspect ratio in RATIO × the view's) and a flip.

    Draws until the box fits (at most 10 tries, as torchvision's RandomResizedCrop), else
    the whole photo; the flip is drawn last, so each view uses a fixed number of draws
    after a success.
    """
    h, w = _size(photo)
    aspect = view_hw[1] / view_hw[0]
    box = _whole(photo, view_hw)
    for _ in range(10):
        area = h * w * rng.uniform(*SCALE)
        ratio = aspect * math.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1])))
        bw, bh = math.sqrt(area * ratio), math.sqrt(area / ratio)
        if bw <= w and bh <= h:
            left, top = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            box = (left, top, left + bw, top + bh)
            break
    return box, bool(rng.random() < 0.5)


def _render(photo: Photo, box, flip: bool, view_hw: tuple[int, int], channels: int) -> np.ndarray:
    """The box of the photo resized to the view size (Pillow bilinear), as uint8 C×h×w."""
    from PIL import Image

    img = Image.fromarray(_pixels(photo)).resize((view_hw[1], view_hw[0]),
                                                 Image.Resampling.BILINEAR, box=box)
    if flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if channels == 1:
        img = img.convert("L")
    out = np.asarray(img)
    return (out[:, :, None] if out.ndim == 2 else out).transpose(2, 0, 1)
