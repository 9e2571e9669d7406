"""ResNet-18 and ResNet-50 (He et al., "Deep Residual Learning for Image Recognition",
CVPR 2016), in the common "v1.5" form: the stride of a bottleneck sits on its 3×3 conv, and
shortcuts that change shape are 1×1 conv + BN projections. Same topology and parameter count
as the usual ImageNet reference implementations.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .registry import ZooEntry, register


def init_weights(model: nn.Module) -> nn.Module:
    """The standard ImageNet initialisation, shared by the zoo's hand-written CNNs.

    Kaiming-normal (fan_out, relu) convs, BN weight 1 / bias 0, Linear N(0, 0.01) with zero
    bias. The caller seeds the RNG.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    return model


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Bias-free conv (BN supplies the shift) + BN, with "same" padding."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    )


def shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity when shapes match, otherwise a 1×1 conv + BN projection (option B)."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return conv_bn(cin, cout, 1, stride)


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = conv_bn(cin, width, 3, stride)
        self.conv2 = conv_bn(width, cout, 3)
        self.shortcut = shortcut(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.conv1(x)))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (strided: v1.5), 1×1 expand ×4, with a residual connection."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = conv_bn(cin, width, 1)
        self.conv2 = conv_bn(width, width, 3, stride)
        self.conv3 = conv_bn(width, cout, 1)
        self.shortcut = shortcut(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.conv1(x))
        out = self.conv3(self.relu(self.conv2(out)))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem (7×7/2 conv, 3×3/2 max-pool), four residual stages, global pool, fc."""

    def __init__(self, block: type[BasicBlock | Bottleneck], depths: Sequence[int],
                 num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
        )
        cin = 64
        for i, (depth, width) in enumerate(zip(depths, (64, 128, 256, 512))):
            stride = 1 if i == 0 else 2  # the stem already downsampled 4×
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, width, stride if j == 0 else 1))
                cin = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000, input_size: tuple[int, int] = (224, 224)) -> ResNet:
    """ResNet-18; input_size is accepted for the zoo interface (any size works)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes).eval()


def resnet50(num_classes: int = 1000, input_size: tuple[int, int] = (224, 224)) -> ResNet:
    """ResNet-50 v1.5; input_size is accepted for the zoo interface (any size works)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes).eval()


register(ZooEntry("resnet18", resnet18, (224, 224), 1000, "resnet", "imagenet",
                  "ResNet-18 (He et al., CVPR 2016), 224x224"))
register(ZooEntry("resnet50", resnet50, (224, 224), 1000, "resnet", "imagenet",
                  "ResNet-50 v1.5 (He et al., CVPR 2016; stride on the 3x3 conv), 224x224"))
