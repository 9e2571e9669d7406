"""Tiny models shared by several test folders (pytest puts tests/ on sys.path via conftest)."""

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
