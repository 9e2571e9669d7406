"""Image preprocessing: what turns decoded pixels into the model's N×C×H×W float32 input.

A `Preprocess` is a frozen record of every step, stored with each result so a number can
always be traced to the exact input it was measured on. Four presets:

* ``darknet`` — Darknet's `classifier valid`: RGB, bytes/255, the central square, then
  Darknet's own `resize_image` (separable bilinear, align-corners: scale = (in−1)/(out−1)),
  no mean/std (shared/darknet/FORMAT.md §5).
* ``imagenet`` — the torchvision recipe: shorter side to 256·S/224 (Pillow bilinear), centre
  crop S×S, bytes/255, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
* ``efficientnet_lite`` — the `imagenet` geometry with TensorFlow's EfficientNet-Lite
  scaling ``(x·255 − 127) / 128``: mean 127/255, std 128/255 on every channel. (TensorFlow's
  own evaluation crops S/(S+32) of the shorter side, 87.5–89% for Lite0–2, and resizes
  bicubic; the torchvision 87.5% bilinear recipe is kept so that one geometry serves all.)
* ``none`` — values passed through as float32, no resize; the data must already fit.

Everything works on arrays shaped (..., C, h, w) so a whole batch of equally sized images
(the sample set, an .npz) is processed at once, and a single image is a batch of one.
Only numpy and Pillow are used; both are deterministic for a given input.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

RESIZE_MODES = ("exact", "shorter", "none")
INTERPOLATIONS = ("darknet", "bilinear")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_LITE_MEAN = (127 / 255,) * 3
TF_LITE_STD = (128 / 255,) * 3
# torchvision's evaluation rule: resize to 256 for a 224 crop, i.e. crop = 87.5% of the side.
IMAGENET_RESIZE_RATIO = 256 / 224


@dataclass(frozen=True)
class Preprocess:
    """Every step between decoded pixels and the model input, in the order applied.

    Attributes:
        name: preset name, or "custom" once anything is overridden.
        unit_scale: divide uint8 pixel values by 255 (float data is taken as already scaled).
        center_square: crop the central min(h, w) square first (Darknet's validation).
        resize: "exact" (to the model's H×W), "shorter" (shorter side to `shorter`, keeping
            the aspect ratio) or "none".
        shorter: shorter-side length for resize="shorter"; None means 256/224 × the input.
        center_crop: crop the model's H×W from the centre after resizing.
        interpolation: "darknet" (Darknet's align-corners bilinear, float32) or "bilinear"
            (Pillow's bilinear, antialiased when shrinking, as torchvision on PIL images).
        mean: per-channel mean subtracted after scaling (one value or one per channel).
        std: per-channel divisor applied after the mean.
    """

    name: str = "custom"
    unit_scale: bool = True
    center_square: bool = False
    resize: str = "exact"
    shorter: float | None = None
    center_crop: bool = False
    interpolation: str = "bilinear"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"resize must be one of {', '.join(RESIZE_MODES)}, not {self.resize!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                              f"not {self.interpolation!r}")
        if self.shorter is not None and self.shorter < 1:
            raise ConfigError(f"shorter side must be at least 1 pixel, not {self.shorter}")
        if self.std is not None and any(s == 0 for s in self.std):
            raise ConfigError("std values must be non-zero")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record of the preprocessing (tuples become lists)."""
        d = asdict(self)
        for key in ("mean", "std"):
            if d[key] is not None:
                d[key] = [float(v) for v in d[key]]
        return d


PRESETS: dict[str, Preprocess] = {
    "darknet": Preprocess(name="darknet", center_square=True, resize="exact",
                          interpolation="darknet"),
    "imagenet": Preprocess(name="imagenet", resize="shorter", center_crop=True,
                           interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "efficientnet_lite": Preprocess(name="efficientnet_lite", resize="shorter", center_crop=True,
                                    interpolation="bilinear", mean=TF_LITE_MEAN,
                                    std=TF_LITE_STD),
    "none": Preprocess(name="none", unit_scale=False, resize="none"),
}

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def resolve_preprocess(spec: str | Preprocess) -> Preprocess:
    """A Preprocess from itself, a preset name, or ``preset,key=value,...`` overrides.

    Overrides use the field names; lists are separated by "/" (``imagenet,mean=0.5/0.5/0.5,
    std=0.5/0.5/0.5``). Overriding anything renames the result "<preset>+custom".

    Raises:
        ConfigError: unknown preset, unknown key or a value that does not parse.
    """
    if isinstance(spec, Preprocess):
        return spec
    name, *pairs = [p.strip() for p in str(spec).split(",")]
    if name not in PRESETS:
        raise ConfigError(f"unknown preprocessing {name!r}; presets: {', '.join(PRESETS)}")
    if not pairs:
        return PRESETS[name]
    changes: dict[str, Any] = {"name": f"{name}+custom"}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in _FIELD_PARSERS:
            raise ConfigError(f"bad preprocessing override {pair!r}; keys: {', '.join(_FIELD_PARSERS)}")
        changes[key.strip()] = _parse_value(key.strip(), value.strip())
    return replace(PRESETS[name], **changes)


def _parse_value(key: str, value: str) -> Any:
    try:
        return _FIELD_PARSERS[key](value)
    except (ValueError, KeyError):
        raise ConfigError(f"bad value {value!r} for preprocessing {key}") from None


def _floats(value: str) -> tuple[float, ...]:
    return tuple(float(v) for v in value.split("/"))


def _optional_float(value: str) -> float | None:
    return None if value.lower() in ("", "none") else float(value)


_FIELD_PARSERS = {
    "unit_scale": lambda v: _BOOL_WORDS[v.lower()],
    "center_square": lambda v: _BOOL_WORDS[v.lower()],
    "center_crop": lambda v: _BOOL_WORDS[v.lower()],
    "resize": str,
    "shorter": _optional_float,
    "interpolation": str,
    "mean": _floats,
    "std": _floats,
}


# ----------------------------------------------------------------------------- pipeline

def apply_preprocess(x: np.ndarray, pre: Preprocess, out_hw: tuple[int, int],
                     name: str | None = None) -> np.ndarray:
    """Applies `pre` to raw pixels shaped (..., C, h, w); returns float32 (..., C, H, W).

    Args:
        x: uint8 pixels, or floats already on the model's scale.
        pre: the preprocessing.
        out_hw: the model's (H, W).
        name: the file the pixels came from, for error messages.

    Raises:
        DataError: the result does not have the model's size (e.g. preset "none").
        ConfigError: mean/std do not fit the channel count, or a crop cannot fit.
    """
    x = to_float(x, pre.unit_scale)
    if pre.center_square:
        x = center_square(x)
    x = _resize(x, pre, out_hw)
    if pre.center_crop:
        x = center_crop(x, out_hw)
    if tuple(x.shape[-2:]) != tuple(out_hw):
        raise DataError(f"image is {x.shape[-2]}×{x.shape[-1]} after preprocessing "
                        f"{pre.name!r}; the model takes {out_hw[0]}×{out_hw[1]}", path=name)
    return normalize(x, pre.mean, pre.std)


def to_float(x: np.ndarray, unit_scale: bool) -> np.ndarray:
    """float32 copy of `x`; uint8 divided by 255 when `unit_scale` (as Darknet's loader)."""
    if x.dtype == np.uint8 and unit_scale:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32, copy=True)


def center_square(x: np.ndarray) -> np.ndarray:
    """The central min(h, w) square, offsets rounded down (Darknet's `center_crop_image`)."""
    h, w = x.shape[-2:]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    return x[..., top:top + m, left:left + m]


def center_crop(x: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """The central H×W window, offsets rounded as torchvision's CenterCrop does."""
    h, w = x.shape[-2:]
    oh, ow = out_hw
    if h < oh or w < ow:
        raise ConfigError(f"cannot crop {oh}×{ow} from a {h}×{w} image; resize it larger first")
    top, left = int(round((h - oh) / 2.0)), int(round((w - ow) / 2.0))
    return x[..., top:top + oh, left:left + ow]


def normalize(x: np.ndarray, mean: tuple[float, ...] | None,
              std: tuple[float, ...] | None) -> np.ndarray:
    """(x − mean) / std per channel; channels are axis −3."""
    channels = x.shape[-3]
    for label, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) not in (1, channels):
            raise ConfigError(f"preprocessing {label} has {len(values)} values; "
                              f"the model takes {channels} channel(s)")
    if mean is not None:
        x = x - np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    if std is not None:
        x = x / np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray(x, dtype=np.float32)


def _resize(x: np.ndarray, pre: Preprocess, out_hw: tuple[int, int]) -> np.ndarray:
    if pre.resize == "none":
        return x
    h, w = x.shape[-2:]
    size = tuple(out_hw) if pre.resize == "exact" else shorter_side_size(h, w, out_hw, pre.shorter)
    if size == (h, w):
        return x
    if pre.interpolation == "darknet":
        return darknet_resize(x, *size)
    return pillow_resize(x, *size)


def shorter_side_size(h: int, w: int, out_hw: tuple[int, int],
                      shorter: float | None) -> tuple[int, int]:
    """Size after torchvision's Resize(int): shorter side → target, longer side truncated.

    The target is `shorter`, or 256/224 × min(H, W) (torchvision's 256 for a 224 crop).
    For a non-square model input the image is enlarged further if the crop would not fit.
    """
    oh, ow = out_hw
    target = int(round(shorter if shorter is not None else IMAGENET_RESIZE_RATIO * min(oh, ow)))
    if h <= w:
        size = (target, int(target * w / h))
    else:
        size = (int(target * h / w), target)
    if size[0] < oh or size[1] < ow:
        f = max(oh / h, ow / w)
        size = (max(oh, int(round(h * f))), max(ow, int(round(w * f))))
    return size


def darknet_resize(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Darknet's `resize_image` (src/image.c): bilinear, columns first, then rows, float32.

    Sample positions are ``i·(in−1)/(out−1)`` (align-corners) computed in float32 as the C
    code does; the last output row/column is the last input row/column. Darknet's row pass
    drops the second tap of its last row, so when float32 rounding puts ``(out−1)·scale``
    just below ``in−1`` (e.g. 8 → 448 rows) Darknet writes a near-black last row; we use the
    last input row there instead — the intent of the code, and a difference of one row.
    """
    x = np.asarray(x, dtype=np.float32)
    h, w = x.shape[-2:]
    part = _darknet_pass(x, w, out_w, axis=-1)
    return _darknet_pass(part, h, out_h, axis=-2)


def _darknet_pass(x: np.ndarray, n_in: int, n_out: int, axis: int) -> np.ndarray:
    i0, i1, frac = _darknet_taps(n_in, n_out)
    shape = (n_out,) if axis == -1 else (n_out, 1)
    frac = frac.reshape(shape)
    a, b = np.take(x, i0, axis=axis), np.take(x, i1, axis=axis)
    return (np.float32(1.0) - frac) * a + frac * b


def _darknet_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left/right source indices and the float32 weight of the right one, per output."""
    if n_in == 1 or n_out == 1:
        last = np.full(n_out, n_in - 1, dtype=np.int64)
        return last, last, np.zeros(n_out, dtype=np.float32)
    scale = np.float32(n_in - 1) / np.float32(n_out - 1)
    pos = np.arange(n_out, dtype=np.float32) * scale
    i0 = pos.astype(np.int64)
    frac = (pos - i0.astype(np.float32)).astype(np.float32)
    i0[-1], frac[-1] = n_in - 1, np.float32(0.0)
    i0 = np.minimum(i0, n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), frac


def pillow_resize(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Pillow bilinear resize of every (h, w) plane, in 32-bit float ("F" images).

    Float planes avoid a uint8 round trip; Pillow widens the filter when shrinking
    (antialiasing), as torchvision does for PIL images.
    """
    from PIL import Image

    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    planes = np.asarray(x, dtype=np.float32).reshape(-1, h, w)
    out = np.empty((planes.shape[0], out_h, out_w), dtype=np.float32)
    for i, plane in enumerate(planes):
        img = Image.fromarray(np.ascontiguousarray(plane))
        out[i] = np.asarray(img.resize((out_w, out_h), Image.Resampling.BILINEAR))
    return out.reshape(*lead, out_h, out_w)
