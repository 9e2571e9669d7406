"""ShuffleNet v2 1.0× (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", ECCV 2018).
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import ZooEntry, register
from .mobilenet import conv_bn_act
from .resnet import init_weights

# 1.0×: stage output channels (stages 2-4) and repeats; conv5 width (paper, Table 5).
STAGE_CHANNELS = (116, 232, 464)
STAGE_REPEATS = (4, 8, 4)
LAST_CHANNELS = 1024


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleaves the channels of `groups` groups so that information crosses branches.

    Written with unflatten/flatten on the channel axis only, so that batch and spatial sizes
    stay symbolic when traced or exported to ONNX.
    """
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


def branch(cin: int, cout: int, stride: int) -> nn.Sequential:
    """1×1 conv-BN-ReLU, 3×3 depthwise conv-BN (no ReLU), 1×1 conv-BN-ReLU."""
    return nn.Sequential(
        conv_bn_act(cin, cout, 1),
        conv_bn_act(cout, cout, 3, stride, groups=cout, act=None),
        conv_bn_act(cout, cout, 1),
    )


class ShuffleUnit(nn.Module):
    """A ShuffleNet v2 unit.

    Stride 1: split the channels in half, transform one half, concatenate, shuffle.
    Stride 2: no split; both branches see the whole input (the shortcut branch is a strided
    depthwise conv + 1×1 conv), doubling the channels.
    """

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride == 1:
            self.shortcut: nn.Module = nn.Identity()
            self.branch = branch(half, half, 1)
        else:
            self.shortcut = nn.Sequential(
                conv_bn_act(cin, cin, 3, stride, groups=cin, act=None),
                conv_bn_act(cin, half, 1),
            )
            self.branch = branch(cin, half, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
            out = torch.cat((left, self.branch(right)), dim=1)
        else:
            out = torch.cat((self.shortcut(x), self.branch(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """3×3/2 conv + 3×3/2 max-pool stem, three shuffle stages, 1×1 conv5, pool, fc."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_act(3, 24, 3, 2), nn.MaxPool2d(3, 2, padding=1))
        cin = 24
        for i, (cout, repeats) in enumerate(zip(STAGE_CHANNELS, STAGE_REPEATS)):
            units = [ShuffleUnit(cin, cout, 2)]
            units += [ShuffleUnit(cout, cout, 1) for _ in range(repeats - 1)]
            self.add_module(f"stage{i + 2}", nn.Sequential(*units))  # paper numbering: 2..4
            cin = cout
        self.conv5 = conv_bn_act(cin, LAST_CHANNELS, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(LAST_CHANNELS, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage4(self.stage3(self.stage2(self.stem(x))))
        return self.fc(torch.flatten(self.avgpool(self.conv5(x)), 1))


def shufflenet_v2(num_classes: int = 1000,
                  input_size: tuple[int, int] = (224, 224)) -> ShuffleNetV2:
    """ShuffleNet v2 1.0×; input_size is accepted for the zoo interface (any size works)."""
    return ShuffleNetV2(num_classes).eval()


register(ZooEntry("shufflenet_v2", shufflenet_v2, (224, 224), 1000, "shufflenet", "imagenet",
                  "ShuffleNet v2 1.0x (Ma et al., ECCV 2018), 224x224"))
