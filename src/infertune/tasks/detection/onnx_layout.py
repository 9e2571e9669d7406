"""An ONNX detector's layout → its DetectionSpec. An ONNX file carries no cfg, so the user
says how to decode it (`--detector`, `--anchors`, `--num-classes`) and this module checks
that against the shapes of its outputs. Two layouts:

- raw per-head maps, as a Darknet YOLO exports (infertune's own exporter included): one
  (B, A·(5 + C), H, W) output per head, decoded by `decode.py` exactly as Darknet's heads.
  `--detector yolo` (default when `--anchors` is given) or `region`, with keys
  `scale_x_y`, `new_coords`, `nms_kind`, `beta_nms` (yolo) or `softmax`, `background`
  (region), and `--num-classes` (required). `--anchors` is either one list of w,h pairs for every head — the head with the
  largest map takes the first ones, as the masks of every Darknet YOLO cfg assign them — or
  one group per output in output order, separated by ';' (yolov4-tiny's masks skip anchor 0).
  Anchors are in input pixels for yolo, grid cells for region, as in a cfg.
- `--detector ultralytics`: one (B, 4 + C, N) decoded tensor (`decode_ultralytics.py`),
  recognised without the flag when N is the anchor-point count of strides 8/16/32(/64) at the
  input size (8400 at 640×640), which is what makes the shape unambiguous.

Every kind takes `pad=` (the letterbox grey in [0, 1]) and `letterbox=0` (the image resized to
the input size instead, as AlexeyAB's darknet does by default). Errors are one-line
ConfigErrors.
Pure: takes output shapes, not the file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ...errors import ConfigError
from .heads import (DARKNET_GREY, NMS_KINDS, ULTRALYTICS_GREY, ULTRALYTICS_NMS_THRESHOLD,
                    DetectionSpec, Head, RegionHead, UltralyticsHead, YoloHead)

Pair = tuple[float, float]
Dims = tuple  # an output's dims after the batch: ints, None where unknown

DETECTOR_KINDS = ("yolo", "region", "ultralytics")
ULTRALYTICS_STRIDES = ((8, 16, 32), (8, 16, 32, 64))  # P3-P5 models and the P6 ones


def _flag(text: str) -> bool:
    value = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if text.lower() not in value:
        raise ValueError(f"not a boolean: {text!r} (1/0, true/false)")
    return value[text.lower()]


def _nms_kind(text: str) -> str:
    if text not in NMS_KINDS:
        raise ValueError(f"must be one of {', '.join(NMS_KINDS)}")
    return text


_KEYS: dict[str, dict[str, Callable[[str], Any]]] = {
    "yolo": {"scale_x_y": float, "new_coords": _flag, "nms_kind": _nms_kind, "beta_nms": float},
    "region": {"softmax": _flag, "background": _flag},
    "ultralytics": {},
}


@dataclass(frozen=True)
class DetectorLayout:
    """`--detector KIND[:key=value,...]` parsed: the kind and its typed keys."""

    kind: str
    options: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any) -> Any:
        return dict(self.options).get(key, default)


def parse_detector(text: str) -> DetectorLayout:
    """'yolo:scale_x_y=1.05,new_coords=1' → DetectorLayout (ConfigError on anything else)."""
    kind, _, rest = text.strip().partition(":")
    if kind not in DETECTOR_KINDS:
        raise ConfigError(f"--detector must be one of {', '.join(DETECTOR_KINDS)} (optionally "
                          f"KIND:key=value,...), not {kind!r}")
    allowed = {**_KEYS[kind], "pad": float, "letterbox": _flag}
    options = []
    for item in (i.strip() for i in rest.split(",") if i.strip()):
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(f"--detector {kind}: {item!r} is not KEY=VALUE with a key of "
                              f"{', '.join(sorted(allowed))}")
        try:
            options.append((key, allowed[key](value.strip())))
        except ValueError as exc:
            raise ConfigError(f"--detector {kind}: bad {key}={value!r} ({exc})") from None
    pad = dict(options).get("pad")
    if pad is not None and not 0.0 <= pad <= 1.0:
        raise ConfigError(f"--detector {kind}: pad must be in [0, 1], not {pad}")
    return DetectorLayout(kind, tuple(options))


def parse_anchors(text: str) -> tuple[tuple[Pair, ...], ...]:
    """'10,14, 23,27' → one group of pairs; 'a,b;c,d' → one group per output (';')."""
    groups = []
    for part in text.split(";"):
        try:
            values = [float(v) for v in part.replace(",", " ").split()]
        except ValueError:
            raise ConfigError(f"--anchors must be numbers (w,h,w,h,...), not {part.strip()!r}"
                              ) from None
        if not values:
            raise ConfigError(f"--anchors has an empty group in {text!r}")
        if len(values) % 2:
            raise ConfigError(f"--anchors needs pairs of numbers (w,h), got {len(values)} "
                              f"values in {part.strip()!r}")
        if min(values) <= 0 or not all(math.isfinite(v) for v in values):
            raise ConfigError(f"--anchors must be positive numbers, not {part.strip()!r}")
        groups.append(tuple((values[i], values[i + 1]) for i in range(0, len(values), 2)))
    return tuple(groups)


def onnx_detection_spec(outputs: Sequence[tuple[str, Dims]], input_hw: tuple[int, int], *,
                        detector: str | None, anchors: str | None,
                        classes: int | None) -> DetectionSpec | None:
    """The spec of an ONNX model's outputs ((name, dims after the batch) in output order), or
    None when nothing says it is a detector and its shape is not unambiguously Ultralytics'."""
    if detector is None and anchors is None:
        return _recognised(outputs, input_hw, classes)
    layout = parse_detector(detector or "yolo")
    if layout.kind == "ultralytics":
        if anchors is not None:
            raise ConfigError("--anchors does not apply to --detector ultralytics (its boxes "
                              "are decoded already)")
        return decoded_spec(outputs, input_hw, classes, layout)
    if anchors is None:
        raise ConfigError(f"--detector {layout.kind} needs --anchors (an ONNX file does not "
                          "carry them): the w,h pairs of the cfg, e.g. --anchors 10,14,23,27,...")
    return maps_spec(outputs, input_hw, parse_anchors(anchors), classes, layout)


# --------------------------------------------------------------------------- raw maps


def _map_dims(name: str, dims: Dims, kind: str) -> tuple[int, int, int]:
    if len(dims) != 3 or not all(isinstance(d, int) and d > 0 for d in dims):
        shape = "×".join("?" if d is None else str(d) for d in dims)
        raise ConfigError(f"--detector {kind}: output {name!r} is B×{shape}, not a "
                          "(B, anchors·(5 + classes), H, W) map")
    return dims  # type: ignore[return-value]


def _counts(maps, pairs: int, classes: int) -> list[int]:
    """Anchors per output when one list gives them all: channels / (5 + classes) each."""
    counts = []
    for name, (channels, _, _) in maps:
        if channels % (5 + classes):
            raise ConfigError(f"output {name!r} has {channels} channels: not anchors·(5 + "
                              f"{classes} classes)")
        counts.append(channels // (5 + classes))
    if sum(counts) != pairs:
        raise ConfigError(f"--anchors gives {pairs} anchors but the outputs' channels hold "
                          f"{' + '.join(map(str, counts))} = {sum(counts)} at {classes} classes")
    return counts


def _by_scale(maps, pairs: tuple[Pair, ...], counts: list[int]) -> list[tuple[Pair, ...]]:
    """The largest map takes the first anchors (Darknet's masks: yolov3 52×52 → 0,1,2)."""
    order = sorted(range(len(maps)), key=lambda i: -maps[i][1][1] * maps[i][1][2])
    out: list[tuple[Pair, ...]] = [()] * len(maps)
    start = 0
    for i in order:
        out[i], start = pairs[start:start + counts[i]], start + counts[i]
    return out


def _check_channels(maps, groups: list[tuple[Pair, ...]], classes: int) -> None:
    for (name, (channels, _, _)), group in zip(maps, groups):
        if channels != len(group) * (5 + classes):
            raise ConfigError(f"output {name!r} has {channels} channels, but its {len(group)} "
                              f"anchors need {len(group)}·(5 + {classes} classes) = "
                              f"{len(group) * (5 + classes)}")


def maps_spec(outputs: Sequence[tuple[str, Dims]], input_hw: tuple[int, int],
              anchors: tuple[tuple[Pair, ...], ...], classes: int | None,
              layout: DetectorLayout) -> DetectionSpec:
    """Raw per-head maps (Darknet's layout) with the user's anchors, classes and keys. The
    class count is required: a map's channels are anchors·(5 + classes), and without it a
    wrong anchor count could still split them (21 = 3·(5 + 2) = 1·(5 + 16))."""
    if classes is None:
        raise ConfigError(f"--detector {layout.kind} needs --num-classes: a map's channels are "
                          "anchors·(5 + classes), both are needed to split them")
    maps = [(name, _map_dims(name, dims, layout.kind)) for name, dims in outputs]
    if len(anchors) > 1:
        if len(anchors) != len(maps):
            raise ConfigError(f"--anchors has {len(anchors)} groups (';') but the model has "
                              f"{len(maps)} outputs")
        groups = list(anchors)
    else:
        groups = _by_scale(maps, anchors[0], _counts(maps, len(anchors[0]), classes))
    _check_channels(maps, groups, classes)
    heads = tuple(_head(layout, i, name, (h, w), classes, group)
                  for i, ((name, (_, h, w)), group) in enumerate(zip(maps, groups)))
    return DetectionSpec(heads=heads, input_hw=tuple(input_hw),
                         letterbox=layout.get("letterbox", True),
                         pad_value=layout.get("pad", DARKNET_GREY))


def _head(layout: DetectorLayout, index: int, name: str, grid: tuple[int, int],
          classes: int, anchors: tuple[Pair, ...]) -> Head:
    """One head; `layer` is its output's index (an ONNX file has no cfg layers)."""
    if layout.kind == "region":
        return RegionHead(layer=index, output=name, grid=grid, classes=classes, anchors=anchors,
                          softmax=layout.get("softmax", False),
                          background=layout.get("background", False))
    return YoloHead(layer=index, output=name, grid=grid, classes=classes, anchors=anchors,
                    scale_x_y=layout.get("scale_x_y", 1.0),
                    new_coords=layout.get("new_coords", False),
                    nms_kind=layout.get("nms_kind", "default"),
                    beta_nms=layout.get("beta_nms", 0.6))


# --------------------------------------------------------------------------- decoded tensor


def decoded_spec(outputs: Sequence[tuple[str, Dims]], input_hw: tuple[int, int],
                 classes: int | None, layout: DetectorLayout = DetectorLayout("ultralytics")
                 ) -> DetectionSpec:
    """One (B, 4 + C, N) output: Ultralytics' thresholds (.25, IoU .7) and grey 114."""
    if len(outputs) != 1:
        raise ConfigError(f"--detector ultralytics needs one (B, 4 + classes, N) output; the "
                          f"model has {len(outputs)}")
    (name, dims), = outputs
    if len(dims) != 2 or not all(isinstance(d, int) for d in dims) or dims[0] < 5:
        shape = "×".join("?" if d is None else str(d) for d in dims)
        raise ConfigError(f"--detector ultralytics: output {name!r} is B×{shape}, not "
                          "(B, 4 + classes, N)")
    if classes is not None and dims[0] != 4 + classes:
        raise ConfigError(f"output {name!r} holds {dims[0] - 4} classes (B×{dims[0]}×{dims[1]}"
                          f" = 4 + classes, N), not --num-classes {classes}")
    head = UltralyticsHead(output=name, classes=dims[0] - 4, boxes=dims[1])
    return DetectionSpec(heads=(head,), input_hw=tuple(input_hw),
                         nms_threshold=ULTRALYTICS_NMS_THRESHOLD,
                         letterbox=layout.get("letterbox", True),
                         pad_value=layout.get("pad", ULTRALYTICS_GREY))


def anchor_points(input_hw: tuple[int, int]) -> set[int]:
    """The box counts N of Ultralytics' anchor-free heads at this input size."""
    h, w = input_hw
    return {sum(math.ceil(h / s) * math.ceil(w / s) for s in strides)
            for strides in ULTRALYTICS_STRIDES}


def _recognised(outputs, input_hw, classes) -> DetectionSpec | None:
    if len(outputs) != 1:
        return None
    (_, dims), = outputs
    if len(dims) == 2 and isinstance(dims[0], int) and dims[0] >= 5 \
            and dims[1] in anchor_points(input_hw):
        return decoded_spec(outputs, input_hw, classes)
    return None
