"""MobileNet v1 (Howard et al., arXiv:1704.04861, 2017) and MobileNet v2 (Sandler et al.,
"MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018), width multiplier 1.0.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import ZooEntry, register
from .resnet import init_weights


def conv_bn_act(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Bias-free conv + BN (+ activation), "same" padding; act=None for a linear layer."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------ MobileNet v1

# (output channels, stride) of the 13 depthwise-separable blocks (paper, Table 1).
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             *((512, 1),) * 5, (1024, 2), (1024, 1))


def depthwise_separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    """3×3 depthwise conv-BN-ReLU, then 1×1 pointwise conv-BN-ReLU."""
    return nn.Sequential(conv_bn_act(cin, cin, 3, stride, groups=cin), conv_bn_act(cin, cout, 1))


class MobileNetV1(nn.Module):
    """3×3/2 stem, 13 depthwise-separable blocks, global average pool, fc."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = conv_bn_act(3, 32, 3, 2)
        blocks, cin = [], 32
        for cout, stride in V1_BLOCKS:
            blocks.append(depthwise_separable(cin, cout, stride))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.stem(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ------------------------------------------------------------------------------ MobileNet v2

# (expansion t, output channels c, repeats n, first stride s) (paper, Table 2).
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """1×1 expand (ReLU6), 3×3 depthwise (ReLU6), 1×1 linear projection; residual when the
    shape is preserved."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:  # the first stage has no expansion conv
            layers.append(conv_bn_act(cin, hidden, 1, act=nn.ReLU6))
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
            conv_bn_act(hidden, cout, 1, act=None),  # linear bottleneck: no activation
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """3×3/2 stem, 17 inverted residual blocks, 1×1 conv to 1280, pool, dropout, fc."""

    def __init__(self, num_classes: int = 1000, last_channels: int = 1280):
        super().__init__()
        self.stem = conv_bn_act(3, 32, 3, 2, act=nn.ReLU6)
        blocks, cin = [], 32
        for t, c, n, s in V2_STAGES:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*blocks)
        self.head = conv_bn_act(cin, last_channels, 1, act=nn.ReLU6)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channels, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.features(self.stem(x)))
        return self.classifier(torch.flatten(self.avgpool(x), 1))


def mobilenet_v1(num_classes: int = 1000, input_size: tuple[int, int] = (224, 224)) -> MobileNetV1:
    """MobileNet v1 1.0; input_size is accepted for the zoo interface (any size works)."""
    return MobileNetV1(num_classes).eval()


def mobilenet_v2(num_classes: int = 1000, input_size: tuple[int, int] = (224, 224)) -> MobileNetV2:
    """MobileNet v2 1.0; input_size is accepted for the zoo interface (any size works)."""
    return MobileNetV2(num_classes).eval()


register(ZooEntry("mobilenet_v1", mobilenet_v1, (224, 224), 1000, "mobilenet", "imagenet",
                  "MobileNet v1 1.0 (Howard et al., arXiv:1704.04861), 224x224"))
register(ZooEntry("mobilenet_v2", mobilenet_v2, (224, 224), 1000, "mobilenet", "imagenet",
                  "MobileNet v2 1.0 (Sandler et al., CVPR 2018), 224x224"))
