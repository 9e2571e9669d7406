"""Tiny models shared by several test folders (pytest puts tests/ on sys.path via conftest)."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# conv-BN-leaky, stride-2 maxpool, 1x1 linear conv to 5 classes, global average, softmax:
# Darknet19's layer kinds at 16x16, small enough to build, export and time in seconds.
TINY_CFG = """[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=5
size=1
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
groups=1
"""

# Floats in a .weights file for TINY_CFG (FORMAT.md §1.3), counted by hand:
# conv1: 8 biases + 3×8 BN arrays + 8·3·3·3 weights = 8 + 24 + 216 = 248
# conv2: 5 biases + 5·8·1·1 weights = 45
TINY_FLOATS = 248 + 45


def tiny_darknet_files(folder: Path) -> tuple[Path, Path]:
    """TINY_CFG and random (seeded) .weights for it in `folder`: (cfg, weights)."""
    cfg = folder / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = folder / "tiny.weights"
    header = struct.pack("<iiiQ", 0, 2, 0, 0)
    data = np.random.default_rng(0).standard_normal(TINY_FLOATS).astype("<f4")
    # BN variances must be positive: they are the 3rd BN array of conv1 (offset 8+8+8).
    data[24:32] = np.abs(data[24:32]) + 0.5
    weights.write_bytes(header + data.tobytes())
    return cfg, weights
