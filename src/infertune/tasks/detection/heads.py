"""What decoding needs to know about each detection head of a network.

A Darknet network returns raw maps, one per `[yolo]`/`[region]` layer (activations included
only where the cfg's conv applies them): decoding (sigmoid, exp, anchors, softmax) happens
outside the timed network, so a quantized network and its float original are decoded by
the same numpy code. These records carry the cfg keys that decoding reads, taken with the
defaults of Darknet's `parse_yolo`/`parse_region` (AlexeyAB's keys included).

An ONNX detector carries no cfg: its layout is given by the user (`--detector`, `--anchors`,
`--num-classes`; `onnx_layout.py` parses them and matches them to the output shapes), either
raw per-head maps as above or one Ultralytics-style decoded tensor (`UltralyticsHead`).

Torch-free: reads `Section`s only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence, Union

from ...errors import UnsupportedModel

NMS_KINDS = ("default", "greedynms", "diounms")
DEFAULT_NMS_THRESHOLD = 0.45  # Darknet's `test_detector`/`validate_detector` hard-code .45
DEFAULT_SCORE_THRESHOLD = 0.25  # Darknet's `detector test` default -thresh
DARKNET_GREY = 0.5  # Darknet's letterbox_image fills with .5
ULTRALYTICS_GREY = 114 / 255  # Ultralytics' LetterBox pads with (114, 114, 114)
ULTRALYTICS_NMS_THRESHOLD = 0.7  # Ultralytics' predict/val default iou=0.7


@dataclass(frozen=True)
class YoloHead:
    """A `[yolo]` layer (YOLOv3/v4).

    Attributes:
        layer: its cfg layer index; output: the network output name it is returned as.
        grid: (H, W) of its map. classes: class count.
        anchors: (w, h) in *input pixels* of the anchors this head predicts (the `mask`ed ones).
        scale_x_y: AlexeyAB's grid sensitivity: x = σ(t)·s − (s − 1)/2.
        new_coords: AlexeyAB's scaled-YOLOv4 boxes: the map is already activated by its conv
            (no sigmoid here), w = (2·t)²·anchor.
        nms_kind / beta_nms: AlexeyAB's NMS variant and its DIoU exponent.
    """

    layer: int
    output: str
    grid: tuple[int, int]
    classes: int
    anchors: tuple[tuple[float, float], ...]
    scale_x_y: float = 1.0
    new_coords: bool = False
    nms_kind: str = "default"
    beta_nms: float = 0.6
    kind: str = field(default="yolo", init=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RegionHead:
    """A `[region]` layer (YOLOv2).

    Attributes:
        layer, output, grid, classes: as YoloHead.
        anchors: (w, h) in *grid cells* (region anchors are relative to the map, not pixels).
        coords: box entries before objectness (4 for every published cfg).
        softmax: classes go through a softmax (else a logistic each).
        background: objectness is fixed at 1 (Darknet's `background=1`).
    """

    layer: int
    output: str
    grid: tuple[int, int]
    classes: int
    anchors: tuple[tuple[float, float], ...]
    coords: int = 4
    softmax: bool = False
    background: bool = False
    kind: str = field(default="region", init=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UltralyticsHead:
    """One decoded output of an Ultralytics-style export (YOLOv8/v11 ONNX): (4 + classes, N)
    per image, rows cx, cy, w, h in *input pixels* then one score per class (already
    sigmoid; no objectness). Decoding is a threshold and class-wise NMS, no anchors.

    Attributes:
        output: the network output name. classes: class count. boxes: N, the box count.
    """

    output: str
    classes: int
    boxes: int
    kind: str = field(default="ultralytics", init=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Head = Union[YoloHead, RegionHead, UltralyticsHead]
HEAD_KINDS = {"yolo": YoloHead, "region": RegionHead, "ultralytics": UltralyticsHead}


@dataclass(frozen=True)
class DetectionSpec:
    """Everything outside the network that turns its outputs into boxes.

    Attributes:
        heads: one per network output, in output order (= cfg order).
        input_hw: the network's (H, W); anchors in pixels are relative to it.
        letterbox: the image is letterboxed (aspect kept, grey padding) as pjreddie's
            Darknet `detector test` does since 2018; False: resized to the network's size
            (AlexeyAB's darknet with letter_box=0); boxes are corrected back accordingly.
        nms_threshold / score_threshold: Darknet's defaults (.45 and .25); Ultralytics'
            (.7 and .25) for its layout.
        pad_value: the letterbox's grey in [0, 1]: Darknet's .5, Ultralytics' 114/255 (the
            geometry is Darknet's for both; Ultralytics' own rounds the offsets, ±1 pixel).
    """

    heads: tuple[Head, ...]
    input_hw: tuple[int, int]
    letterbox: bool = True
    nms_threshold: float = DEFAULT_NMS_THRESHOLD
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    pad_value: float = DARKNET_GREY

    def __post_init__(self) -> None:
        if not self.heads:
            raise ValueError("a DetectionSpec needs at least one head")
        if not 0.0 <= self.pad_value <= 1.0:
            raise ValueError(f"pad_value must be in [0, 1], not {self.pad_value}")

    @property
    def classes(self) -> int:
        return self.heads[0].classes

    @property
    def output_names(self) -> list[str]:
        return [head.output for head in self.heads]

    def to_dict(self) -> dict[str, Any]:
        return {"heads": [h.to_dict() for h in self.heads], "input_hw": list(self.input_hw),
                "letterbox": self.letterbox, "nms_threshold": self.nms_threshold,
                "score_threshold": self.score_threshold, "pad_value": self.pad_value}

    def __str__(self) -> str:  # meta is rendered with default=str in JSON output
        return str(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DetectionSpec":
        """The spec `to_dict` wrote (a run directory keeps it for its worker processes; one
        written before `pad_value` existed letterboxed with Darknet's grey)."""
        heads: list[Head] = []
        for raw in data["heads"]:
            fields = {k: v for k, v in raw.items() if k != "kind"}
            if "grid" in fields:
                fields["grid"] = tuple(fields["grid"])
            if "anchors" in fields:
                fields["anchors"] = tuple(tuple(a) for a in fields["anchors"])
            heads.append(HEAD_KINDS[raw["kind"]](**fields))
        return cls(heads=tuple(heads), input_hw=tuple(data["input_hw"]),
                   letterbox=bool(data["letterbox"]), nms_threshold=float(data["nms_threshold"]),
                   score_threshold=float(data["score_threshold"]),
                   pad_value=float(data.get("pad_value", DARKNET_GREY)))


def output_name(kind: str, layer: int) -> str:
    """The ONNX output name of a head: its type and cfg layer index ("yolo_16")."""
    return f"{kind.lower()}_{layer}"


def _anchor_pairs(sec, key: str = "anchors") -> list[tuple[float, float]] | None:
    values = sec.get_float_list(key) if sec.has(key) else None
    if values is None:
        return None
    if len(values) % 2:
        raise sec.error(f"anchors= needs pairs of numbers, got {len(values)} values", key=key)
    return [(values[i], values[i + 1]) for i in range(0, len(values), 2)]


def yolo_head(sec, grid: tuple[int, int]) -> YoloHead:
    """A YoloHead from a `[yolo]` section (Darknet's defaults; anchors 0.5 when absent)."""
    total = sec.get_int("num", 1)
    mask = sec.get_int_list("mask") if sec.has("mask") else None
    mask = list(range(total)) if mask is None else mask
    pairs = _anchor_pairs(sec) or [(0.5, 0.5)] * max(total, 1)  # make_yolo_layer: biases .5
    if any(not 0 <= m < len(pairs) for m in mask):
        raise sec.error(f"mask={','.join(map(str, mask))} points past the {len(pairs)} anchors",
                        key="mask")
    nms_kind = sec.get_str("nms_kind", "default")
    if nms_kind not in NMS_KINDS:
        nms_kind = "default"  # AlexeyAB falls back to the default NMS for unknown names
    return YoloHead(layer=sec.index, output=output_name("yolo", sec.index), grid=grid,
                    classes=sec.get_int("classes", 20), anchors=tuple(pairs[m] for m in mask),
                    scale_x_y=sec.get_float("scale_x_y", 1.0),
                    new_coords=sec.get_int("new_coords", 0) != 0, nms_kind=nms_kind,
                    beta_nms=sec.get_float("beta_nms", 0.6))


def region_head(sec, grid: tuple[int, int]) -> RegionHead:
    """A RegionHead from a `[region]` section."""
    num = sec.get_int("num", 1)
    pairs = _anchor_pairs(sec) or [(0.5, 0.5)] * num
    if len(pairs) < num:
        raise sec.error(f"num={num} needs {num} anchor pairs, got {len(pairs)}", key="anchors")
    if sec.has("tree") or sec.has("map"):
        raise UnsupportedModel(f"{sec.path}:{sec.line}: hierarchical [region] (tree=/map=) "
                               "decoding is not supported")
    return RegionHead(layer=sec.index, output=output_name("region", sec.index), grid=grid,
                      classes=sec.get_int("classes", 20), anchors=tuple(pairs[:num]),
                      coords=sec.get_int("coords", 4), softmax=sec.get_int("softmax", 0) != 0,
                      background=sec.get_int("background", 0) != 0)


def detection_spec(sections: Sequence, out_shapes: Sequence, head_layers: Sequence[int],
                   input_hw: tuple[int, int], letterbox: bool = True) -> DetectionSpec | None:
    """The DetectionSpec of a network's heads (layer indices into `sections`), or None when a
    head has no decoder here (`[Gaussian_yolo]`, `[detection]`). `letterbox`: the cfg's
    input geometry (load.darknet.letterbox_rule)."""
    heads: list[Head] = []
    for index in head_layers:
        sec, shape = sections[index], out_shapes[index]
        grid = (int(shape[1]), int(shape[2])) if not isinstance(shape, int) else (1, 1)
        if sec.type == "yolo":
            heads.append(yolo_head(sec, grid))
        elif sec.type == "region":
            heads.append(region_head(sec, grid))
        else:
            return None
    if not heads:
        return None
    if len({h.classes for h in heads}) > 1:
        raise UnsupportedModel(f"{sections[0].path}: the detection heads disagree on the "
                               f"class count ({sorted({h.classes for h in heads})})")
    return DetectionSpec(heads=tuple(heads), input_hw=(int(input_hw[0]), int(input_hw[1])),
                         letterbox=letterbox)
