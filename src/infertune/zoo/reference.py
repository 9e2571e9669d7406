"""Trained reference models: two Darknet-style digit classifiers shipped with their weights.

`ref-small` and `ref-large` exist so that accuracy drops are real: they are trained (by
`infertune zoo train NAME`, see train.py) on the built-in sample set's `sample:train` part
and measured on `sample:val`, and their Darknet `.weights`, `.cfg` and a JSON record of how
they were made and what they scored live in `infertune/zoo/weights/`.

Design choices, and why:
* Input 3×32×32, not the digits' native 1×28×28: three channels are what users' models take,
  so the default model exercises the same path (RGB input, resize in preprocessing) as a real
  one; 32 = 2⁵ keeps every pooling exact. The cost is 3× the MACs of the first conv only.
  The sample set repeats its grey channel into three and resizes 28→32 with Darknet's resize.
* Conv-BN-leaky stages and 2×2 max-pools, as in Darknet-19, described as cfg text with the
  darknet_family helpers: the models are real Darknet networks (`cfg_text` writes them out)
  built by our Darknet importer.
* The head is a 1×1 linear conv to 10 classes and a global average pool, with **no softmax**:
  the outputs are logits, so fidelity (cosine similarity, SQNR) compares the values a
  quantizer actually perturbs rather than probabilities squashed near 0 and 1.
* `ref-large` has ~12× the MACs of `ref-small` (a wider, deeper Darknet-19-like stack) so
  that optimizations have real compute to save.
"""
from __future__ import annotations

from .darknet_family import DarknetArch, avgpool, conv, maxpool, pairs
from .registry import ZooEntry, register

INPUT_SIZE = (32, 32)
NUM_CLASSES = 10


def logits_head(num_classes: int) -> list[str]:
    """1×1 linear conv to the classes, then global average pooling: logits, no softmax."""
    return [conv(num_classes, 1, bn=False, act="linear"), avgpool()]


def small_body(num_classes: int) -> list[str]:
    """Three 3×3 conv-BN-leaky stages (16, 32, 64 filters), each halving the resolution."""
    return [
        conv(16, 3), maxpool(),
        conv(32, 3), maxpool(),
        conv(64, 3), maxpool(),
        *logits_head(num_classes),
    ]  # fmt: skip


def large_body(num_classes: int) -> list[str]:
    """A Darknet-19-like stack: two convs at full resolution, then 3×3/1×1/3×3 stages."""
    return [
        conv(32, 3), conv(32, 3), maxpool(),
        conv(64, 3), *pairs(32, 64, 1), maxpool(),
        conv(128, 3), *pairs(64, 128, 1), maxpool(),
        *logits_head(num_classes),
    ]  # fmt: skip


ARCHS: tuple[DarknetArch, ...] = (
    DarknetArch("ref-small", small_body, INPUT_SIZE,
                "trained reference: 3-stage Darknet-style digit classifier (sample:train), 32x32"),
    DarknetArch("ref-large", large_body, INPUT_SIZE,
                "trained reference: 8-conv Darknet-19-like digit classifier (sample:train), 32x32"),
)  # fmt: skip


def _register_all() -> None:
    for arch in ARCHS:
        register(ZooEntry(
            name=arch.name, build=arch.build, input_size=arch.input_size,
            num_classes=NUM_CLASSES, family="reference", preprocess="darknet",
            description=arch.description, cfg_text=arch.cfg_text,
            weights=f"{arch.name}.weights",
        ))  # fmt: skip


_register_all()
