"""Sections → shape chain → DarknetNet (FORMAT.md §2.3-§3).

`plan_network` walks the cfg exactly as Darknet's `parse_network_cfg` does, computing every
layer's output shape, the floats it owns in a .weights file and its multiply-accumulates,
without allocating tensors. `DarknetNet` then instantiates one module per layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import Tensor, nn

from ...errors import UnsupportedModel
from .activations import check_activation
from .budget import check_layer
from .cfg import Section
from .layers import LAYER_CLASSES, LayerInfo, Shape

DETECTION_HEADS = frozenset({"region", "yolo", "Gaussian_yolo", "detection"})
# Heads whose raw (C, H, W) map is a network output: every one of them, in cfg order.
MAP_HEADS = frozenset({"region", "yolo", "Gaussian_yolo"})
# Layer types we parse but cannot run (recurrent, AB research layers).
UNSUPPORTED_TYPES = frozenset({"rnn", "gru", "lstm", "crnn", "conv_lstm", "history", "iseg",
                               "implicit", "contrastive", "reorg3d", "local_avgpool"})


@dataclass
class LayerPlan:
    """One layer of the shape chain.

    Attributes:
        section: its cfg section. kind: canonical type.
        in_shape / out_shape: (C, H, W), or an int for a flat vector (Darknet's 0×0×0).
        refs: earlier layers it reads besides its input (route, shortcut, sam, ...).
        floats: float32 values it owns in a .weights file (0 with dontload).
        macs: multiply-accumulates per image (conv-like layers only).
        args: keyword arguments of its module class in layers.py.
    """

    section: Section
    kind: str
    in_shape: Shape
    out_shape: Shape
    refs: tuple[int, ...] = ()
    floats: int = 0
    macs: int = 0
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.section.index


def numel(shape: Shape) -> int:
    """Values per image of a shape."""
    return shape if isinstance(shape, int) else shape[0] * shape[1] * shape[2]


def unsupported(sec: Section, message: str) -> UnsupportedModel:
    return UnsupportedModel(f"{sec.path}:{sec.line}: layer {sec.index} [{sec.type}]: {message}")


def _image(sec: Section, shape: Shape) -> tuple[int, int, int]:
    if isinstance(shape, int) or min(shape) <= 0:
        raise sec.error("the layer before must output an image (C×H×W), not a flat vector "
                        f"of {numel(shape)} values")
    return shape


def _activation(sec: Section, default: str) -> str:
    name = sec.get_str("activation", default)
    try:
        check_activation(name)
    except KeyError:
        raise sec.error(f"unknown activation {name!r}", key="activation") from None
    except UnsupportedModel as exc:
        raise unsupported(sec, str(exc)) from None
    return name


def _positive(sec: Section, **values: int) -> None:
    for key, value in values.items():
        if value < 1:
            raise sec.error(f"{key}={value} must be at least 1", key=key)


def _refs(sec: Section, key: str) -> list[int]:
    """Resolves `layers=`/`from=` entries: negative = relative, else absolute (earlier only)."""
    raw = sec.get_int_list(key)
    if raw is None:
        raise sec.error(f"needs {key}=", key=key)
    resolved = []
    for value in raw:
        index = sec.index + value if value < 0 else value
        if not 0 <= index < sec.index:
            raise sec.error(f"{key}={value} points to layer {index}, not one of the earlier layers "
                            f"0..{sec.index - 1}", key=key)
        resolved.append(index)
    return resolved


def _flag_unsupported(sec: Section, *keys: str) -> None:
    for key in keys:
        if sec.has(key) and sec.get_float(key, 0.0) != 0.0:
            raise unsupported(sec, f"{key}={sec.get_str(key)} is not supported")


def _load_args(sec: Section) -> dict[str, Any]:
    return {"dontload": sec.get_int("dontload", 0) != 0,
            "dontloadscales": sec.get_int("dontloadscales", 0) != 0,
            "numload": max(sec.get_int("numload", 0), 0), "flipped": sec.get_int("flipped", 0) != 0}


def _conv_floats(sec: Section, load: dict, c_per_group: int, filters: int, size: int,
                 bn: bool) -> int:
    """load_convolutional_weights: biases, [scales, mean, var], weights, for `numload` filters."""
    m = load["numload"] or filters
    if load["numload"] > filters:
        raise sec.error(f"numload={m} exceeds filters={filters}", key="numload")
    return m + (3 * m if bn and not load["dontloadscales"] else 0) + c_per_group * m * size * size


def _conv_stride(sec: Section) -> tuple[int, int]:
    """(stride_y, stride_x): AB's stride_y/stride_x, each defaulting to `stride`."""
    sx, sy = sec.get_int("stride_x", -1), sec.get_int("stride_y", -1)
    stride = sec.get_int("stride", 1)
    return (sy if sy >= 1 else stride), (sx if sx >= 1 else stride)


def _conv_out(sec: Section, length: int, padding: int, size: int, stride: int, dilation: int) -> int:
    darknet = length + 2 * padding - size
    if darknet < 0:
        raise sec.error(f"size={size} is larger than the padded input ({length}+2×{padding})")
    torch_len = length + 2 * padding * dilation - dilation * (size - 1) - 1
    if torch_len // stride != darknet // stride:  # AB pads pad·dilation: equal for pad=size/2
        raise unsupported(sec, f"dilation={dilation} with padding={padding} changes the output size")
    return darknet // stride + 1


def _conv_geometry(sec: Section, c: int) -> dict[str, Any]:
    """filters/size/groups/stride/dilation/padding of a [convolutional], validated."""
    filters, size, groups = sec.get_int("filters", 1), sec.get_int("size", 1), sec.get_int("groups", 1)
    sy, sx = _conv_stride(sec)
    dilation = 1 if size == 1 else sec.get_int("dilation", 1)  # AB ignores dilation for 1×1
    _positive(sec, filters=filters, size=size, groups=groups, stride=min(sy, sx), dilation=dilation)
    if c % groups or filters % groups:
        raise sec.error(f"groups={groups} must divide both the {c} input channels and "
                        f"filters={filters}", key="groups")
    padding = size // 2 if sec.get_int("pad", 0) else sec.get_int("padding", 0)  # FORMAT §2.5
    if padding < 0:
        raise sec.error(f"padding={padding} must not be negative", key="padding")
    return dict(c_in=c, filters=filters, size=size, stride=(sy, sx), padding=padding,
                dilation=dilation, groups=groups)


def _antialias(sec: Section, filters: int, out_hw: tuple[int, int], stride: tuple[int, int]):
    """AB antialiasing: the host conv runs at stride 1, then a fixed blur with the stride.

    Returns (module argument or None, blur MACs, output (H, W)).
    """
    mode = sec.get_int("antialiasing", 0)
    if not mode:
        return None, 0, out_hw
    size, pad = (2, 0) if mode == 2 else (3, 1)
    out = tuple((n + 2 * pad - size) // s + 1 for n, s in zip(out_hw, stride))
    return (size, pad, stride), filters * size * size * out_hw[0] * out_hw[1], out


def plan_convolutional(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, h, w = _image(sec, shape)
    _flag_unsupported(sec, "xnor", "binary", "sway", "rotate", "stretch", "stretch_sway",
                      "coordconv", "reverse")
    if sec.has("share_index"):
        raise unsupported(sec, "share_index (weights shared with another layer) is not supported")
    geo = _conv_geometry(sec, c)
    filters, size, groups = geo["filters"], geo["size"], geo["groups"]
    host = (1, 1) if sec.get_int("antialiasing", 0) else geo["stride"]
    out_hw = (_conv_out(sec, h, geo["padding"], size, host[0], geo["dilation"]),
              _conv_out(sec, w, geo["padding"], size, host[1], geo["dilation"]))
    macs = filters * size * size * (c // groups) * out_hw[0] * out_hw[1]
    antialias, blur_macs, out_hw = _antialias(sec, filters, out_hw, geo["stride"])
    bn = sec.get_int("batch_normalize", 0) != 0 or sec.get_int("cbn", 0) != 0
    load = _load_args(sec)
    if load["flipped"] and groups > 1:
        raise unsupported(sec, "flipped=1 with groups > 1")
    args = dict(geo, bn=bn, activation=_activation(sec, "logistic"), antialias=antialias, **load)
    return LayerPlan(sec, sec.type, shape, (filters, *out_hw), macs=macs + blur_macs, args=args,
                     floats=_conv_floats(sec, load, c // groups, filters, size, bn))


def plan_deconvolutional(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, h, w = _image(sec, shape)
    filters, size, stride = sec.get_int("filters", 1), sec.get_int("size", 1), sec.get_int("stride", 1)
    _positive(sec, filters=filters, size=size, stride=stride)
    padding = size // 2 if sec.get_int("pad", 0) else sec.get_int("padding", 0)
    if padding < 0:
        raise sec.error(f"padding={padding} must not be negative", key="padding")
    load = _load_args(sec)
    if load["numload"] or load["flipped"]:
        raise unsupported(sec, "numload/flipped on [deconvolutional]")
    out_h, out_w = (h - 1) * stride + size - 2 * padding, (w - 1) * stride + size - 2 * padding
    if min(out_h, out_w) < 1:
        raise sec.error(f"padding={padding} leaves no output")
    bn = sec.get_int("batch_normalize", 0) != 0
    args = dict(c_in=c, filters=filters, size=size, stride=stride, padding=padding, bn=bn,
                activation=_activation(sec, "logistic"), **load)
    floats = filters + (3 * filters if bn and not load["dontloadscales"] else 0)
    floats += c * filters * size * size
    return LayerPlan(sec, sec.type, shape, (filters, out_h, out_w), floats=floats,
                     macs=c * filters * size * size * h * w, args=args)


def plan_local(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, h, w = _image(sec, shape)
    filters, size, stride, pad = (sec.get_int("filters", 1), sec.get_int("size", 1),
                                  sec.get_int("stride", 1), sec.get_int("pad", 0))
    _positive(sec, filters=filters, size=size, stride=stride)
    # local_out_height: (h - 1)/stride + 1 with pad, (h - size)/stride + 1 without
    out_h, out_w = ((h - 1) // stride + 1, (w - 1) // stride + 1) if pad else (
        (h - size) // stride + 1, (w - size) // stride + 1)
    im2col = ((h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1)
    if im2col != (out_h, out_w) or min(out_h, out_w) < 1:
        raise unsupported(sec, f"pad={pad} with size={size} (Darknet's [local] is only consistent "
                               "for size 3 with pad=1, or pad=0)")
    locations = out_h * out_w
    weights = locations * filters * c * size * size
    args = dict(c_in=c, filters=filters, size=size, stride=stride, pad=pad,
                activation=_activation(sec, "logistic"), **_load_args(sec))
    return LayerPlan(sec, sec.type, shape, (filters, out_h, out_w), floats=filters * locations + weights,
                     macs=weights, args=args)


def plan_connected(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    inputs, output = numel(shape), sec.get_int("output", 1)
    _positive(sec, output=output)
    if inputs < 1:
        raise sec.error("has no input values")
    bn = sec.get_int("batch_normalize", 0) != 0
    load = _load_args(sec)
    floats = output + output * inputs + (3 * output if bn and not load["dontloadscales"] else 0)
    args = dict(inputs=inputs, output=output, bn=bn, activation=_activation(sec, "logistic"), **load)
    return LayerPlan(sec, sec.type, shape, (output, 1, 1), floats=floats, macs=inputs * output,
                     args=args)


def plan_batchnorm(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, _, _ = _image(sec, shape)
    load = _load_args(sec)
    return LayerPlan(sec, sec.type, shape, shape, floats=0 if load["dontload"] else 3 * c,
                     args=dict(channels=c, **load))


def plan_maxpool(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, h, w = _image(sec, shape)
    _flag_unsupported(sec, "maxpool_depth", "antialiasing", "maxpool_zero_nonmax")
    stride = sec.get_int("stride", 1)
    sx, sy = sec.get_int("stride_x", stride), sec.get_int("stride_y", stride)
    size = sec.get_int("size", stride)
    padding = sec.get_int("padding", size - 1)
    _positive(sec, size=size, stride=min(sx, sy))
    if padding < 0 or h + padding < size or w + padding < size:
        raise sec.error(f"size={size} does not fit the {h}×{w} input with total padding {padding}")
    out = (c, (h + padding - size) // sy + 1, (w + padding - size) // sx + 1)
    return LayerPlan(sec, sec.type, shape, out, args=dict(size=size, stride=(sy, sx), padding=padding))


def plan_avgpool(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, _, _ = _image(sec, shape)
    return LayerPlan(sec, sec.type, shape, (c, 1, 1))


def plan_softmax(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    if sec.has("tree"):
        raise unsupported(sec, "hierarchical softmax (tree=) is not supported")
    _flag_unsupported(sec, "spatial")
    inputs, groups = numel(shape), sec.get_int("groups", 1)
    temperature = sec.get_float("temperature", 1.0)
    _positive(sec, groups=groups)
    if inputs % groups:
        raise sec.error(f"groups={groups} does not divide the {inputs} input values", key="groups")
    if temperature == 0.0 or temperature != temperature or abs(temperature) == float("inf"):
        raise sec.error(f"temperature={temperature} must be a finite non-zero number",
                        key="temperature")
    return LayerPlan(sec, sec.type, shape, inputs, args=dict(groups=groups, temperature=temperature))


def plan_same(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    """dropout, empty, activation, logistic, l2norm: output shape = input shape."""
    args = {"activation": _activation(sec, "linear")} if sec.type == "activation" else {}
    return LayerPlan(sec, sec.type, shape, shape, args=args)


def plan_cost(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    return LayerPlan(sec, sec.type, shape, numel(shape))  # make_cost_layer keeps only `outputs`


def plan_normalization(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    _image(sec, shape)
    size = sec.get_int("size", 5)
    _positive(sec, size=size)
    args = dict(size=size, alpha=sec.get_float("alpha", 0.0001), beta=sec.get_float("beta", 0.75),
                kappa=sec.get_float("kappa", 1.0))
    return LayerPlan(sec, sec.type, shape, shape, args=args)


def _heads(sec: Section, shape: Shape, per_anchor: int, anchors: int) -> None:
    c, _, _ = _image(sec, shape)
    if c != anchors * per_anchor:
        raise sec.error(f"expects {anchors}×{per_anchor} = {anchors * per_anchor} input channels "
                        f"(filters= of the conv before), got {c}")


def plan_region(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    classes, coords, num = sec.get_int("classes", 20), sec.get_int("coords", 4), sec.get_int("num", 1)
    _heads(sec, shape, classes + coords + 1, num)
    return LayerPlan(sec, sec.type, shape, shape)


def plan_yolo(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    mask = sec.get_int_list("mask")
    anchors = len(mask) if mask is not None else sec.get_int("num", 1)
    extra = 9 if sec.type == "Gaussian_yolo" else 5
    _heads(sec, shape, sec.get_int("classes", 20) + extra, anchors)
    return LayerPlan(sec, sec.type, shape, shape)


def plan_detection(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    side, num = sec.get_int("side", 7), sec.get_int("num", 1)
    coords, classes = sec.get_int("coords", 1), sec.get_int("classes", 1)
    expected = side * side * ((1 + coords) * num + classes)
    if expected != numel(shape):
        raise sec.error(f"expects side²·((1+coords)·num+classes) = {expected} inputs, "
                        f"got {numel(shape)}")
    return LayerPlan(sec, sec.type, shape, numel(shape))


def plan_route(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    refs = _refs(sec, "layers")
    groups, group_id = sec.get_int("groups", 1), sec.get_int("group_id", 0)
    _positive(sec, groups=groups)
    if not 0 <= group_id < groups:
        raise sec.error(f"group_id={group_id} must be in 0..{groups - 1}", key="group_id")
    shapes = [plans[i].out_shape for i in refs]
    first = shapes[0]
    image = all(not isinstance(s, int) and s[1:] == first[1:] for s in shapes)  # else flat concat
    units = [s[0] if image else numel(s) for s in shapes]
    for index, unit in zip(refs, units):
        if unit % groups:
            raise sec.error(f"groups={groups} does not divide the {unit} "
                            f"{'channels' if image else 'values'} of layer {index}", key="groups")
    part = [unit // groups for unit in units]
    slices = [None if groups == 1 else (group_id * p, (group_id + 1) * p) for p in part]
    out = (sum(part), first[1], first[2]) if image else sum(part)
    return LayerPlan(sec, sec.type, shape, out, refs=tuple(refs), args=dict(image=image, slices=slices))


def plan_shortcut(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    prev = _image(sec, shape)
    if sec.get_str("weights_type", "none") != "none":
        raise unsupported(sec, "weighted shortcut (weights_type=) is not supported")
    refs = _refs(sec, "from")
    shapes = [plans[i].out_shape for i in refs]
    for index, frm in zip(refs, shapes):
        if isinstance(frm, int) or min(frm) <= 0:
            raise sec.error(f"from layer {index} must output an image, not {numel(frm)} flat values",
                            key="from")
        (c2, h2, w2), (c1, h1, w1) = prev, frm
        if len(refs) > 1 and frm[1:] != prev[1:]:
            raise unsupported(sec, "multi-input shortcut over different sizes")
        if w1 // w2 != h1 // h2 or w2 // w1 != h2 // h1:
            raise sec.error(f"cannot add layer {index} ({c1}×{h1}×{w1}) to {c2}×{h2}×{w2}: "
                            "width and height ratios differ", key="from")
    args = dict(from_shapes=shapes, alpha=sec.get_float("alpha", 1.0), beta=sec.get_float("beta", 1.0),
                activation=_activation(sec, "linear"))
    return LayerPlan(sec, sec.type, shape, prev, refs=tuple(refs), args=args)


def plan_reorg(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, h, w = _image(sec, shape)
    stride, extra = sec.get_int("stride", 1), sec.get_int("extra", 0)
    reverse, flatten = sec.get_int("reverse", 0) != 0, sec.get_int("flatten", 0) != 0
    _positive(sec, stride=stride)
    if extra:  # flat copy followed by `extra` zeros (checked before flatten, as Darknet)
        args = dict(stride=stride, mode="extra", extra=extra)
        return LayerPlan(sec, sec.type, shape, c * h * w + extra, args=args)
    s2 = stride * stride
    out = (c // s2, h * stride, w * stride) if reverse else (c * s2, h // stride, w // stride)
    if c % s2 or (not reverse and (h % stride or w % stride)) or min(out) < 1:
        raise sec.error(f"stride={stride} does not evenly reorganise a {c}×{h}×{w} input", key="stride")
    mode = {(False, False): "normal", (False, True): "reverse", (True, False): "flatten",
            (True, True): "flatten_reverse"}[(flatten, reverse)]
    return LayerPlan(sec, sec.type, shape, out, args=dict(stride=stride, mode=mode))


def plan_upsample(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, h, w = _image(sec, shape)
    stride = sec.get_int("stride", 2)
    if stride == 0:
        raise sec.error("stride must not be 0", key="stride")
    out = (c, h * stride, w * stride) if stride > 0 else (c, h // -stride, w // -stride)
    if min(out) < 1:
        raise sec.error(f"stride={stride} leaves no output from a {h}×{w} input", key="stride")
    args = dict(stride=stride, scale=sec.get_float("scale", 1.0))
    return LayerPlan(sec, sec.type, shape, out, args=args)


def plan_crop(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    c, h, w = _image(sec, shape)
    ch, cw = sec.get_int("crop_height", 1), sec.get_int("crop_width", 1)
    _positive(sec, crop_height=ch, crop_width=cw)
    if ch > h or cw > w:
        raise sec.error(f"crop {ch}×{cw} is larger than the {h}×{w} input")
    args = dict(top=(h - ch) // 2, left=(w - cw) // 2, adjust=sec.get_int("noadjust", 0) == 0)
    return LayerPlan(sec, sec.type, shape, (c, ch, cw), args=args)


def _from_image(sec: Section, plans: list[LayerPlan]) -> tuple[int, tuple[int, int, int]]:
    refs = _refs(sec, "from")
    if len(refs) != 1:
        raise sec.error("from= takes one layer here", key="from")
    frm = plans[refs[0]].out_shape
    if isinstance(frm, int) or min(frm) <= 0:
        raise sec.error(f"from layer {refs[0]} must output an image", key="from")
    return refs[0], frm


def plan_scale_channels(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    index, frm = _from_image(sec, plans)
    scale_wh = sec.get_int("scale_wh", 0) != 0
    need = frm[1] * frm[2] if scale_wh else frm[0]
    if numel(shape) != need:
        raise sec.error(f"the layer before gives {numel(shape)} values, scaling layer {index} "
                        f"needs {need}")
    args = dict(scale_wh=scale_wh, activation=_activation(sec, "linear"))
    return LayerPlan(sec, sec.type, shape, frm, refs=(index,), args=args)


def plan_sam(sec: Section, shape: Shape, plans: list[LayerPlan]) -> LayerPlan:
    index, frm = _from_image(sec, plans)
    if numel(shape) != numel(frm):
        raise sec.error(f"the layer before gives {numel(shape)} values, layer {index} {numel(frm)}")
    args = dict(activation=_activation(sec, "linear"))
    return LayerPlan(sec, sec.type, shape, frm, refs=(index,), args=args)


PLANNERS: dict[str, Callable[[Section, Shape, list[LayerPlan]], LayerPlan]] = {
    "convolutional": plan_convolutional, "deconvolutional": plan_deconvolutional,
    "local": plan_local, "connected": plan_connected, "batchnorm": plan_batchnorm,
    "maxpool": plan_maxpool, "avgpool": plan_avgpool, "softmax": plan_softmax,
    "dropout": plan_same, "empty": plan_same, "activation": plan_same, "logistic": plan_same,
    "l2norm": plan_same, "cost": plan_cost, "normalization": plan_normalization,
    "region": plan_region, "yolo": plan_yolo, "Gaussian_yolo": plan_yolo,
    "detection": plan_detection, "route": plan_route, "shortcut": plan_shortcut,
    "reorg": plan_reorg, "upsample": plan_upsample, "crop": plan_crop,
    "scale_channels": plan_scale_channels, "sam": plan_sam,
}  # fmt: skip


def input_shape(net: Section, input_size: tuple[int, int] | None = None) -> tuple[int, int, int]:
    """(C, H, W) of the input: [net] channels/height/width, H×W overridden by input_size."""
    c, h, w = net.get_int("channels", 0), net.get_int("height", 0), net.get_int("width", 0)
    if input_size is not None:
        h, w = int(input_size[0]), int(input_size[1])
    if min(c, h, w) < 1:
        if net.get_int("inputs", 0) > 0:
            raise UnsupportedModel(f"{net.path}:{net.line}: [net] has a flat `inputs=` but no image "
                                   "(width, height, channels); only image networks are supported")
        raise net.error(f"needs positive width, height and channels (got {w}×{h}×{c})")
    return c, h, w


def plan_network(sections: list[Section], input_size: tuple[int, int] | None = None,
                 ) -> tuple[tuple[int, int, int], list[LayerPlan]]:
    """Walks the shape chain; returns the input (C, H, W) and one LayerPlan per layer."""
    if not sections or sections[0].type != "net":
        raise ValueError("sections must start with the [net] section (use parse_cfg)")
    shape: Shape = input_shape(sections[0], input_size)
    first, plans, params = shape, [], 0
    for sec in sections[1:]:
        if sec.type in UNSUPPORTED_TYPES:
            raise unsupported(sec, f"[{sec.type}] layers are not supported")
        plan = PLANNERS[sec.type](sec, shape, plans)
        params = check_layer(plan, params)  # untrusted cfg: bound memory before any tensor
        if plan.args.get("dontload"):
            plan.floats = 0  # load_weights_upto skips the layer without reading
        plans.append(plan)
        shape = plan.out_shape
    if not any(plan.kind != "cost" for plan in plans):
        raise sections[0].error("the cfg has no layers (besides [cost])")
    return first, plans


def count_weight_floats(sections: list[Section], input_size: tuple[int, int] | None = None) -> int:
    """Float32 values a .weights file holds for this cfg (header excluded); no tensors made.

    Only connected (and local) layers depend on the input size.
    """
    return sum(plan.floats for plan in plan_network(sections, input_size)[1])


class DarknetNet(nn.Module):
    """A Darknet network as one nn.Module per cfg layer (inference semantics, eval mode).

    Attributes:
        layers: one module per cfg layer, in cfg order (index 0 = first after [net]).
        sections: the layers' cfg sections (aligned with `layers`); net_section: [net].
        input_size: (C, H, W) of the input. out_shapes: per layer (C, H, W) or a flat int.
        output_index: the last layer that is not [cost] (Darknet's network output).
        name, bn_eps: cfg name and batch-norm epsilon convention ("cpu" / "gpu").
        macs: multiply-accumulates per image of each layer (conv-like layers).
        head_indices: [region]/[yolo]/[detection] layers.
        output_heads: the [region]/[yolo]/[Gaussian_yolo] layers, in cfg order: forward
            returns each one's raw map (a tuple when there are several), so a detector with
            two or three scales keeps them all. output_names: their names ("yolo_16"), or
            None for a network without such heads (a classifier keeps its one output).
    """

    def __init__(self, sections: list[Section], plans: list[LayerPlan],
                 input_size: tuple[int, int, int], *, name: str = "<cfg>", bn_eps: str = "cpu"):
        super().__init__()
        self.layers = nn.ModuleList(_make_layer(plan, bn_eps) for plan in plans)
        self.net_section, self.sections = sections[0], [plan.section for plan in plans]
        self.name, self.bn_eps, self.input_size = name, bn_eps, tuple(input_size)
        self.out_shapes = [plan.out_shape for plan in plans]
        self.macs = [plan.macs for plan in plans]
        self.output_index = max(i for i, plan in enumerate(plans) if plan.kind != "cost")
        self.head_indices = [i for i, plan in enumerate(plans) if plan.kind in DETECTION_HEADS]
        self.output_heads = [i for i in self.head_indices
                             if plans[i].kind in MAP_HEADS and i <= self.output_index]
        self.output_names = [f"{plans[i].kind.lower()}_{i}" for i in self.output_heads] or None
        self._refs = [plan.refs for plan in plans[: self.output_index + 1]]
        last_use = {j: i for i, refs in enumerate(self._refs) for j in refs
                    if j not in self.output_heads}
        self._keep = frozenset(last_use) | frozenset(self.output_heads)
        self._release = [[j for j, last in last_use.items() if last == i]
                         for i in range(len(self._refs))]

    @property
    def output_shape(self) -> Shape:
        return self.out_shapes[self.output_index]

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        """Runs layers 0..output_index, keeping only outputs a later route/shortcut reads.

        Returns the raw map of each detection head (B, C, H, W) — a tuple when there are
        several — else (B, N) when the output is flat or C×1×1 (a classifier), else
        (B, C, H, W).
        """
        saved: dict[int, Tensor] = {}
        for i, refs in enumerate(self._refs):
            layer = self.layers[i]
            x = layer(x, *[saved[j] for j in refs]) if refs else layer(x)
            if i in self._keep:
                saved[i] = x
            for j in self._release[i]:
                del saved[j]
        if self.output_heads:
            maps = tuple(saved[i] for i in self.output_heads)
            return maps[0] if len(maps) == 1 else maps
        shape = self.output_shape
        return x.flatten(1) if isinstance(shape, int) or shape[1:] == (1, 1) else x

    def weight_floats(self) -> int:
        """Floats of a .weights file for this network, counted from the module tensors."""
        return sum(a.tensor.numel() for layer in self.layers for a in layer.file_arrays())


def _make_layer(plan: LayerPlan, bn_eps: str) -> nn.Module:
    info = LayerInfo(plan.index, plan.section.line, plan.in_shape, plan.out_shape)
    args = dict(plan.args)
    if plan.kind in ("convolutional", "deconvolutional", "connected", "batchnorm"):
        args["bn_eps"] = bn_eps
    return LAYER_CLASSES[plan.kind](info, **args)


def build_network(sections: list[Section], *, name: str = "<cfg>",
                  input_size: tuple[int, int] | None = None, bn_eps: str = "cpu") -> DarknetNet:
    """Plans and instantiates the network (default torch init), in eval mode."""
    first, plans = plan_network(sections, input_size)
    return DarknetNet(sections, plans, first, name=name, bn_eps=bn_eps).eval()
