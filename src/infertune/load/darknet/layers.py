"""One `nn.Module` per Darknet layer type (FORMAT.md §3), built from shapes worked out by
build.py. Each class has `profile_as_layer = True` and `darknet_type`, and each instance
keeps `index`, `line`, `in_shape`, `out_shape` (a (C, H, W) tuple, or an int when flat).

Tensors follow the recorded shape: image layers give (B, C, H, W), flat ones (B, N).
Layers with parameters list them in file order with `file_arrays()` (used by weights.py).
Everything here is inference-only and traceable with a symbolic batch dimension.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import make_activation

Shape = Union[tuple[int, int, int], int]
FLT_MAX = 3.4028234663852886e38  # Darknet pads max-pool windows with -FLT_MAX


@dataclass(frozen=True)
class LayerInfo:
    """Where a layer sits: index, cfg line, and its Darknet input/output shapes."""

    index: int
    line: int
    in_shape: Shape
    out_shape: Shape


@dataclass(frozen=True)
class FileArray:
    """A tensor (view) filled from the .weights file; if `stored_as` is (rows, cols) the
    file holds that matrix and the tensor is its transpose (connected `transpose`, `flipped`)."""

    tensor: Tensor
    stored_as: tuple[int, int] | None = None


class BatchNormCPU(nn.BatchNorm2d):
    """Darknet CPU batch norm: (x − mean) / (sqrt(var) + 1e-6) · gamma + beta (FORMAT §3.2).

    Buffers hold the file's values unchanged; the denominator is expressed as a variance
    (sqrt(var)+1e-6)² with eps 0, so ONNX export still gives one BatchNormalization.
    Always uses the running statistics (inference semantics). Folding passes should use
    `effective_std()`; `eps` is 0 so that generic sqrt(var + eps) code is the closer guess.
    """

    bn_eps = "cpu"

    def __init__(self, num_features: int):
        super().__init__(num_features, eps=0.0)

    def effective_std(self) -> Tensor:
        """Per-channel denominator: sqrt(running_var) + 1e-6."""
        return torch.sqrt(self.running_var) + 1e-6

    def forward(self, x: Tensor) -> Tensor:
        std = self.effective_std()
        var = std * std  # a product, not pow: the ONNX exporter constant-folds Mul
        return F.batch_norm(x, self.running_mean, var, self.weight, self.bias, False, 0.0, 0.0)


class BatchNormGPU(nn.BatchNorm2d):
    """Darknet GPU / AlexeyAB batch norm: (x − mean) / sqrt(var + 1e-5) (= BatchNorm2d),
    always with the running statistics."""

    bn_eps = "gpu"

    def __init__(self, num_features: int):
        super().__init__(num_features, eps=1e-5)

    def effective_std(self) -> Tensor:
        """Per-channel denominator: sqrt(running_var + 1e-5)."""
        return torch.sqrt(self.running_var + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            False, 0.0, self.eps)


def make_batchnorm(channels: int, bn_eps: str) -> nn.BatchNorm2d:
    """The batch norm of the chosen epsilon convention ("cpu" or "gpu")."""
    return BatchNormCPU(channels) if bn_eps == "cpu" else BatchNormGPU(channels)


class DarknetLayer(nn.Module):
    """Base: remembers where the layer is; parameter-free by default."""

    profile_as_layer = True
    darknet_type = ""

    def __init__(self, info: LayerInfo):
        super().__init__()
        self.index, self.line = info.index, info.line
        self.in_shape, self.out_shape = info.in_shape, info.out_shape

    def file_arrays(self, transpose: bool = False) -> list[FileArray]:
        """Tensors read from / written to the .weights file, in file order."""
        return []

    def extra_repr(self) -> str:
        return f"index={self.index}, line={self.line}, out={self.out_shape}"


class _Loadable(DarknetLayer):
    """Shared `.weights` options of conv-like layers (dontload, numload, ...)."""

    def _load_options(self, args: dict) -> None:
        self.dontload = bool(args.get("dontload", False))
        self.dontloadscales = bool(args.get("dontloadscales", False))
        self.numload = int(args.get("numload", 0))
        self.flipped = bool(args.get("flipped", False))

    def _bn_arrays(self, bn: nn.BatchNorm2d, m: int) -> list[FileArray]:
        if self.dontloadscales:
            return []
        return [FileArray(bn.weight[:m]), FileArray(bn.running_mean[:m]), FileArray(bn.running_var[:m])]


class DarknetConv(_Loadable):
    """[convolutional]: conv (groups, dilation, stride_x/y) → BN or bias → activation,
    then AlexeyAB's fixed blur when `antialiasing` is set."""

    darknet_type = "convolutional"

    def __init__(self, info: LayerInfo, *, c_in: int, filters: int, size: int, stride: tuple[int, int],
                 padding: int, dilation: int, groups: int, bn: bool, activation: str, bn_eps: str,
                 antialias: tuple[int, int, tuple[int, int]] | None = None, **load):
        super().__init__(info)
        self._load_options(load)
        self.conv = nn.Conv2d(c_in, filters, size, stride=(1, 1) if antialias else stride,
                              padding=padding * dilation, dilation=dilation, groups=groups, bias=not bn)
        self.bn = make_batchnorm(filters, bn_eps) if bn else None
        self.act = make_activation(activation)
        self.blur_stride, self.blur_pad = (1, 1), 0
        if antialias:
            blur_size, self.blur_pad, self.blur_stride = antialias
            self.register_buffer("blur", _blur_kernel(filters, blur_size), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        y = self.act(y)
        if hasattr(self, "blur"):
            y = F.conv2d(y, self.blur, stride=self.blur_stride, padding=self.blur_pad,
                         groups=self.conv.out_channels)
        return y

    def file_arrays(self, transpose: bool = False) -> list[FileArray]:
        if self.dontload:
            return []
        m = self.numload or self.conv.out_channels
        arrays = [FileArray((self.bn.bias if self.bn is not None else self.conv.bias)[:m])]
        if self.bn is not None:
            arrays += self._bn_arrays(self.bn, m)
        weight = self.conv.weight[:m]
        stored = (weight[0].numel(), m) if self.flipped else None  # file: (c·k·k) × n
        return arrays + [FileArray(weight, stored)]


def _blur_kernel(channels: int, size: int) -> Tensor:
    """AB antialiasing filter: [1 2 1]ᵀ[1 2 1]/16 (size 3) or a 2×2 box (size 2), per channel."""
    base = torch.tensor([1.0, 2.0, 1.0]) if size == 3 else torch.tensor([1.0, 1.0])
    kernel = torch.outer(base, base)
    kernel = kernel / kernel.sum()
    return kernel.expand(channels, 1, size, size).clone()


class DarknetDeconv(_Loadable):
    """[deconvolutional] (pjreddie): transposed conv → BN or bias → activation."""

    darknet_type = "deconvolutional"

    def __init__(self, info: LayerInfo, *, c_in: int, filters: int, size: int, stride: int, padding: int,
                 bn: bool, activation: str, bn_eps: str, **load):
        super().__init__(info)
        self._load_options(load)
        self.conv = nn.ConvTranspose2d(c_in, filters, size, stride, padding, bias=not bn)
        self.bn = make_batchnorm(filters, bn_eps) if bn else None
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return self.act(self.bn(y) if self.bn is not None else y)

    def file_arrays(self, transpose: bool = False) -> list[FileArray]:
        if self.dontload:
            return []
        n = self.conv.out_channels
        arrays = [FileArray(self.bn.bias if self.bn is not None else self.conv.bias)]
        if self.bn is not None:
            arrays += self._bn_arrays(self.bn, n)
        return arrays + [FileArray(self.conv.weight)]


class DarknetConnected(_Loadable):
    """[connected]: Linear on the flattened C×H×W input → BN or bias → activation;
    output (B, out, 1, 1) as Darknet records out×1×1."""

    darknet_type = "connected"

    def __init__(self, info: LayerInfo, *, inputs: int, output: int, bn: bool, activation: str,
                 bn_eps: str, **load):
        super().__init__(info)
        self._load_options(load)
        self.fc = nn.Linear(inputs, output, bias=not bn)
        self.bn = make_batchnorm(output, bn_eps) if bn else None
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        y = self.fc(x.flatten(1)).reshape(-1, self.fc.out_features, 1, 1)
        return self.act(self.bn(y) if self.bn is not None else y)

    def file_arrays(self, transpose: bool = False) -> list[FileArray]:
        if self.dontload:
            return []
        out, inp = self.fc.out_features, self.fc.in_features
        bias = self.bn.bias if self.bn is not None else self.fc.bias
        arrays = [FileArray(bias), FileArray(self.fc.weight, (inp, out) if transpose else None)]
        return arrays + (self._bn_arrays(self.bn, out) if self.bn is not None else [])


class DarknetLocal(_Loadable):
    """[local]: a convolution with separate weights and bias at every output position."""

    darknet_type = "local"

    def __init__(self, info: LayerInfo, *, c_in: int, filters: int, size: int, stride: int, pad: int,
                 activation: str, **load):
        super().__init__(info)
        self._load_options(load)
        _, out_h, out_w = info.out_shape
        self.size, self.stride, self.pad = size, stride, pad
        k = c_in * size * size
        bound = 1.0 / k**0.5
        self.weight = nn.Parameter(torch.empty(out_h * out_w, filters, k).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(filters, out_h, out_w))
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        cols = F.unfold(x, self.size, padding=self.pad, stride=self.stride)  # (B, c·k·k, L)
        y = torch.einsum("bkl,lnk->bnl", cols, self.weight)
        return self.act(y.reshape(-1, *self.bias.shape) + self.bias)

    def file_arrays(self, transpose: bool = False) -> list[FileArray]:
        return [] if self.dontload else [FileArray(self.bias), FileArray(self.weight)]


class DarknetBatchnorm(_Loadable):
    """[batchnorm] (pjreddie): scales, rolling mean/var from the file; beta stays 0."""

    darknet_type = "batchnorm"

    def __init__(self, info: LayerInfo, *, channels: int, bn_eps: str, **load):
        super().__init__(info)
        self._load_options(load)
        self.bn = make_batchnorm(channels, bn_eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x)

    def file_arrays(self, transpose: bool = False) -> list[FileArray]:
        bn = self.bn
        return [] if self.dontload else [FileArray(bn.weight), FileArray(bn.running_mean),
                                         FileArray(bn.running_var)]


class DarknetMaxpool(DarknetLayer):
    """[maxpool]: `padding` is the *total* padding, split floor/ceil, filled with −FLT_MAX
    (FORMAT §3.3), then an unpadded max-pool; so size=2 stride=1 keeps H×W."""

    darknet_type = "maxpool"

    def __init__(self, info: LayerInfo, *, size: int, stride: tuple[int, int], padding: int):
        super().__init__(info)
        self.size, self.stride = size, stride
        lo, hi = padding // 2, padding - padding // 2
        self.pads = (lo, hi, lo, hi)

    def forward(self, x: Tensor) -> Tensor:
        if not any(self.pads):
            return F.max_pool2d(x, self.size, self.stride)
        lo, hi = self.pads[0], self.pads[1]
        if lo < self.size and hi < self.size:
            # Every window then holds at least one real pixel, and edge-replicated padding gives
            # exactly the same maxima as -FLT_MAX. It keeps +-3.4e38 out of the graph, which
            # breaks histogram calibration (ORT entropy/percentile) and INT8 ranges.
            x = F.pad(x, self.pads, mode="replicate")
        else:
            x = F.pad(x, self.pads, value=-FLT_MAX)
        return F.max_pool2d(x, self.size, self.stride)


class DarknetAvgpool(DarknetLayer):
    """[avgpool]: always global average pooling → (C, 1, 1)."""

    darknet_type = "avgpool"

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class DarknetSoftmax(DarknetLayer):
    """[softmax]: on the flat input, `groups` consecutive chunks, each softmax(x / T)."""

    darknet_type = "softmax"

    def __init__(self, info: LayerInfo, *, groups: int, temperature: float):
        super().__init__(info)
        self.groups, self.temperature = groups, temperature
        self.in_size = info.out_shape  # flat, = input values

    def forward(self, x: Tensor) -> Tensor:
        y = x.flatten(1)
        if self.temperature != 1.0:
            y = y / self.temperature
        if self.groups == 1:
            return torch.softmax(y, dim=1)
        return torch.softmax(y.reshape(-1, self.groups, self.in_size // self.groups), dim=2).flatten(1)


class _Identity(DarknetLayer):
    """Layers that pass their input through at inference."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class DarknetDropout(_Identity):
    darknet_type = "dropout"


class DarknetCost(_Identity):
    darknet_type = "cost"


class DarknetEmpty(_Identity):
    darknet_type = "empty"


class DarknetRegion(_Identity):
    """[region] (YOLOv2): raw input passed through; decoding is post-processing."""

    darknet_type = "region"


class DarknetYolo(_Identity):
    """[yolo] (YOLOv3): raw input passed through; decoding is post-processing."""

    darknet_type = "yolo"


class DarknetGaussianYolo(_Identity):
    darknet_type = "Gaussian_yolo"


class DarknetDetection(_Identity):
    """[detection] (YOLOv1): raw flat input passed through."""

    darknet_type = "detection"


class DarknetActivation(DarknetLayer):
    """[activation]: an element-wise activation (default linear)."""

    darknet_type = "activation"

    def __init__(self, info: LayerInfo, *, activation: str):
        super().__init__(info)
        self.act = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x)


class DarknetLogistic(DarknetActivation):
    darknet_type = "logistic"

    def __init__(self, info: LayerInfo):
        super().__init__(info, activation="logistic")


class DarknetL2Norm(DarknetLayer):
    """[l2norm]: divide by the L2 norm over channels at each pixel (no epsilon, as Darknet)."""

    darknet_type = "l2norm"

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:  # Darknet loops over 0×0×0 for flat inputs: a copy
            return x
        return x / torch.sqrt((x * x).sum(dim=1, keepdim=True))


class DarknetNormalization(DarknetLayer):
    """[normalization] (LRN), pjreddie CPU arithmetic: x · (κ + α·Σ x²)^(−β), where its
    sliding sum covers channels k−(size−1)/2 … k+size/2 but never counts channel size/2
    (a quirk of `forward_normalization_layer`'s initialisation; cuDNN's LRN differs)."""

    darknet_type = "normalization"

    def __init__(self, info: LayerInfo, *, size: int, alpha: float, beta: float, kappa: float):
        super().__init__(info)
        self.size, self.alpha, self.beta, self.kappa = size, alpha, beta, kappa

    def forward(self, x: Tensor) -> Tensor:
        channels, half = self.in_shape[0], self.size // 2
        sq = x * x
        padded = F.pad(sq, (0, 0, 0, 0, (self.size - 1) // 2, half))
        window = sum(padded[:, k:k + channels] for k in range(self.size))
        if half < channels:
            window = window - sq[:, half:half + 1]
        return x * torch.pow(self.kappa + self.alpha * window, -self.beta)


class DarknetRoute(DarknetLayer):
    """[route]: concatenation of earlier outputs — along channels when they share H×W,
    else of flat vectors; AB `groups/group_id` keeps one slice of each input."""

    darknet_type = "route"

    def __init__(self, info: LayerInfo, *, image: bool, slices: list[tuple[int, int] | None]):
        super().__init__(info)
        self.image, self.slices = image, slices  # per input: (start, stop) kept, or None = all

    def forward(self, x: Tensor, *inputs: Tensor) -> Tensor:
        parts = []
        for t, kept in zip(inputs, self.slices):
            t = t if self.image else t.flatten(1)
            parts.append(t if kept is None else t[:, kept[0]:kept[1]])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class DarknetShortcut(DarknetLayer):
    """[shortcut] (FORMAT §3.7): out = prev; out[k, j·sample, i·sample] = α·out + β·from[k,
    j·stride, i·stride] over the overlap of channels and positions; then activation.
    AB multi-input `from=a,b` (equal H×W) adds every input the same way."""

    darknet_type = "shortcut"

    def __init__(self, info: LayerInfo, *, from_shapes: list[tuple[int, int, int]], alpha: float,
                 beta: float, activation: str):
        super().__init__(info)
        self.alpha, self.beta = alpha, beta
        self.act = make_activation(activation)
        self.geometry = [_ShortcutGeometry.of(info.in_shape, s) for s in from_shapes]
        for n, g in enumerate(self.geometry):
            if g.sparse:
                mask = torch.zeros(1, g.minc, *info.in_shape[1:])
                mask[:, :, :g.minh * g.sample:g.sample, :g.minw * g.sample:g.sample] = 1.0
                self.register_buffer(f"mask{n}", mask, persistent=False)

    def forward(self, x: Tensor, *froms: Tensor) -> Tensor:
        out = x
        for n, frm in enumerate(froms):
            out = self._add(out, frm, n)
        return self.act(out)

    def _add(self, prev: Tensor, frm: Tensor, n: int) -> Tensor:
        g, alpha, beta = self.geometry[n], self.alpha, self.beta
        if g.same:
            return _axpby(alpha, prev, beta, frm)
        f = frm[:, :g.minc, ::g.stride, ::g.stride][:, :, :g.minh, :g.minw]
        head, tail = prev[:, :g.minc], prev[:, g.minc:]
        if not g.sparse:  # every position receives a contribution: only channels differ
            head = _axpby(alpha, head, beta, f)
        else:  # alpha only scales the positions that receive a contribution
            head = head + getattr(self, f"mask{n}") * ((alpha - 1.0) * head) + g.scatter(beta * f)
        return head if g.minc == self.in_shape[0] else torch.cat([head, tail], dim=1)


def _axpby(alpha: float, a: Tensor, beta: float, b: Tensor) -> Tensor:
    return (a if alpha == 1.0 else alpha * a) + (b if beta == 1.0 else beta * b)


@dataclass(frozen=True)
class _ShortcutGeometry:
    """The index arithmetic of Darknet's `shortcut_cpu` for one (prev, from) pair."""

    same: bool
    stride: int
    sample: int
    minc: int
    minh: int
    minw: int
    height: int
    width: int

    @classmethod
    def of(cls, prev: tuple[int, int, int], frm: tuple[int, int, int]) -> "_ShortcutGeometry":
        (c2, h2, w2), (c1, h1, w1) = prev, frm
        return cls((c1, h1, w1) == (c2, h2, w2), max(w1 // w2, 1), max(w2 // w1, 1),
                   min(c1, c2), min(h1, h2), min(w1, w2), h2, w2)

    @property
    def sparse(self) -> bool:
        """True when some positions of prev get no contribution."""
        return self.sample > 1 or self.minh < self.height or self.minw < self.width

    def scatter(self, f: Tensor) -> Tensor:
        """Places f[..., j, i] at [..., j·sample, i·sample] of a zero H×W canvas (traceable)."""
        s = self.sample
        if s > 1:
            f = F.pad(f.unsqueeze(3).unsqueeze(5), (0, s - 1, 0, 0, 0, s - 1))
            f = f.flatten(4, 5).flatten(2, 3)
        return F.pad(f, (0, self.width - self.minw * s, 0, self.height - self.minh * s))


class DarknetReorg(DarknetLayer):
    """[reorg]: Darknet's own data movement (FORMAT §3.8), *not* pixel_unshuffle. Modes:
    normal (C·s², H/s, W/s), reverse (C/s², H·s, W·s), flatten (CHW↔HWC), extra (flat+N)."""

    darknet_type = "reorg"

    def __init__(self, info: LayerInfo, *, stride: int, mode: str, extra: int = 0):
        super().__init__(info)
        self.stride, self.mode, self.extra = stride, mode, extra

    def forward(self, x: Tensor) -> Tensor:
        s, out = self.stride, self.out_shape
        c, h, w = self.in_shape
        if self.mode == "extra":
            return F.pad(x.flatten(1), (0, self.extra))
        if self.mode == "flatten":  # CHW -> HWC memory order
            return x.flatten(2).transpose(1, 2).reshape(-1, *out)
        if self.mode == "flatten_reverse":  # HWC -> CHW memory order
            return x.reshape(-1, h * w, c).transpose(1, 2).reshape(-1, *out)
        if self.mode == "reverse":
            y = x.reshape(-1, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2)
            return y.reshape(-1, *out)
        # normal: view memory as (C/s², H, s, W, s), space-to-depth, re-view as the output
        y = x.reshape(-1, c // (s * s), h, s, w, s).permute(0, 3, 5, 1, 2, 4)
        return y.reshape(-1, *out)


class DarknetUpsample(DarknetLayer):
    """[upsample]: nearest ×stride times `scale`; negative stride sums |s|×|s| blocks."""

    darknet_type = "upsample"

    def __init__(self, info: LayerInfo, *, stride: int, scale: float):
        super().__init__(info)
        self.stride, self.scale = stride, scale

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 0:
            y = F.interpolate(x, scale_factor=float(self.stride), mode="nearest")
        else:
            s, (_, out_h, out_w) = -self.stride, self.out_shape
            y = x[:, :, :out_h * s, :out_w * s].reshape(-1, self.out_shape[0], out_h, s, out_w, s)
            y = y.sum(dim=(3, 5))
        return y if self.scale == 1.0 else y * self.scale


class DarknetCrop(DarknetLayer):
    """[crop] at inference: centre crop, then x → 2x − 1 unless `noadjust`."""

    darknet_type = "crop"

    def __init__(self, info: LayerInfo, *, top: int, left: int, adjust: bool):
        super().__init__(info)
        self.top, self.left, self.adjust = top, left, adjust

    def forward(self, x: Tensor) -> Tensor:
        _, height, width = self.out_shape
        y = x[:, :, self.top:self.top + height, self.left:self.left + width]
        return y * 2.0 - 1.0 if self.adjust else y


class DarknetScaleChannels(DarknetLayer):
    """[scale_channels] (AB): from-layer output times the previous output, per channel
    (or per position with `scale_wh`), then activation."""

    darknet_type = "scale_channels"

    def __init__(self, info: LayerInfo, *, scale_wh: bool, activation: str):
        super().__init__(info)
        self.scale_wh = scale_wh
        self.act = make_activation(activation)

    def forward(self, x: Tensor, frm: Tensor) -> Tensor:
        c, h, w = self.out_shape
        scale = x.reshape(-1, 1, h, w) if self.scale_wh else x.reshape(-1, c, 1, 1)
        return self.act(frm * scale)


class DarknetSam(DarknetLayer):
    """[sam] (AB): element-wise from-layer output times the previous output, activation."""

    darknet_type = "sam"

    def __init__(self, info: LayerInfo, *, activation: str):
        super().__init__(info)
        self.act = make_activation(activation)

    def forward(self, x: Tensor, frm: Tensor) -> Tensor:
        return self.act(frm * x.reshape(-1, *self.out_shape))


LAYER_CLASSES: dict[str, type[DarknetLayer]] = {
    cls.darknet_type: cls for cls in (
        DarknetConv, DarknetDeconv, DarknetConnected, DarknetLocal, DarknetBatchnorm,
        DarknetMaxpool, DarknetAvgpool, DarknetSoftmax, DarknetDropout, DarknetCost,
        DarknetEmpty, DarknetRegion, DarknetYolo, DarknetGaussianYolo, DarknetDetection,
        DarknetActivation, DarknetLogistic, DarknetL2Norm, DarknetNormalization, DarknetRoute,
        DarknetShortcut, DarknetReorg, DarknetUpsample, DarknetCrop, DarknetScaleChannels,
        DarknetSam)
}  # fmt: skip
