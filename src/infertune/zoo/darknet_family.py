"""The Darknet classifiers (Darknet19, Darknet19 448, Darknet Reference, Tiny Darknet,
Extraction), described in Python.

Each architecture is a short list of layer helpers that *generate* Darknet cfg text (only the
keys inference needs); `build` hands that text to our own Darknet loader, so a zoo model and
the same network read from a `.cfg` file are the very same module type, and the zoo entry can
be written out as a `.cfg` again (`ZooEntry.cfg_text`).

The topologies follow the public descriptions: Darknet-19 (Redmon & Farhadi, "YOLO9000",
CVPR 2017, Table 6), GoogLeNet-like Extraction, and the Darknet Reference / Tiny Darknet
models of pjreddie.com/darknet/imagenet.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .registry import ZooEntry, register

# --------------------------------------------------------------------------- cfg helpers


def section(kind: str, **keys: object) -> str:
    """One cfg section: `[kind]` then `key=value` lines, in the order given."""
    return "\n".join([f"[{kind}]", *(f"{k}={v}" for k, v in keys.items())])


def net(height: int, width: int, channels: int = 3) -> str:
    """The `[net]` header; inference only needs the input shape."""
    return section("net", batch=1, subdivisions=1, height=height, width=width, channels=channels)


def conv(filters: int, size: int, stride: int = 1, bn: bool = True, act: str = "leaky") -> str:
    """A convolution with "same" padding (`pad=1` means size//2, so 0 for 1×1 convs)."""
    keys: dict[str, object] = {"batch_normalize": 1} if bn else {}
    keys.update(filters=filters, size=size, stride=stride, pad=1, activation=act)
    return section("convolutional", **keys)


def maxpool(size: int = 2, stride: int = 2) -> str:
    """Max-pooling with Darknet's default padding (size - 1, so odd inputs round up)."""
    return section("maxpool", size=size, stride=stride)


def avgpool() -> str:
    """Global average pooling (Darknet's avgpool is always global)."""
    return section("avgpool")


def softmax() -> str:
    return section("softmax", groups=1)


def pairs(narrow: int, wide: int, n: int) -> list[str]:
    """`n` times (1×1 `narrow` squeeze, 3×3 `wide` expand): the Network-in-Network motif."""
    return [conv(narrow, 1), conv(wide, 3)] * n


def stack(wide: int, narrow: int, n: int) -> list[str]:
    """A Darknet-19 stage: `n` (odd) convs, 3×3 `wide` alternating with 1×1 `narrow`."""
    return [conv(wide, 3), *pairs(narrow, wide, (n - 1) // 2)]


def head(num_classes: int, act: str = "linear") -> list[str]:
    """Fully-convolutional classifier: 1×1 conv to classes (no BN), global pool, softmax."""
    return [conv(num_classes, 1, bn=False, act=act), avgpool(), softmax()]


# --------------------------------------------------------------------------- architectures


def darknet19_body(num_classes: int) -> list[str]:
    """Darknet-19: 19 convs, 5 max-pools (YOLO9000, Table 6)."""
    return [
        conv(32, 3), maxpool(),
        conv(64, 3), maxpool(),
        *stack(128, 64, 3), maxpool(),
        *stack(256, 128, 3), maxpool(),
        *stack(512, 256, 5), maxpool(),
        *stack(1024, 512, 5),
        *head(num_classes),
    ]  # fmt: skip


def reference_body(num_classes: int) -> list[str]:
    """Darknet Reference: seven 3×3 convs doubling 16→1024, pooled before the classifier."""
    layers: list[str] = []
    for filters in (16, 32, 64, 128, 256, 512):
        layers += [conv(filters, 3), maxpool()]
    # Why this order: the reference model pools *before* its 1×1 classifier conv.
    classifier = conv(num_classes, 1, bn=False, act="linear")
    return [*layers, conv(1024, 3), avgpool(), classifier, softmax()]


def tiny_body(num_classes: int) -> list[str]:
    """Tiny Darknet: SqueezeNet-like 1×1 squeezes between wide 3×3 convs."""
    return [
        conv(16, 3), maxpool(),
        conv(32, 3), maxpool(),
        *pairs(16, 128, 2), maxpool(),
        *pairs(32, 256, 2), maxpool(),
        *pairs(64, 512, 2),
        conv(128, 1),
        *head(num_classes),
    ]  # fmt: skip


def extraction_body(num_classes: int) -> list[str]:
    """Extraction: a GoogLeNet-sized network built from 1×1/3×3 pairs instead of inceptions."""
    return [
        conv(64, 7, 2), maxpool(),
        conv(192, 3), maxpool(),
        *pairs(128, 256, 1), *pairs(256, 512, 1), maxpool(),
        *pairs(256, 512, 4), *pairs(512, 1024, 1), maxpool(),
        *pairs(512, 1024, 2),
        *head(num_classes, act="leaky"),  # the published cfg's classifier conv is leaky
    ]  # fmt: skip


@dataclass(frozen=True)
class DarknetArch:
    """A Darknet classifier: a layer-list generator plus its zoo metadata."""

    name: str
    body: Callable[[int], list[str]]
    input_size: tuple[int, int]
    description: str

    def cfg_text(self, height: int, width: int, num_classes: int) -> str:
        """The Darknet cfg for this architecture at height×width with num_classes outputs."""
        return "\n\n".join([net(height, width), *self.body(num_classes)]) + "\n"

    def build(self, num_classes: int, input_size: tuple[int, int]):
        """A randomly initialised, eval-mode DarknetNet (the caller seeds the RNG)."""
        from ..load.darknet import network_from_text  # lazy: keeps `import infertune.zoo` light

        height, width = input_size
        text = self.cfg_text(height, width, num_classes)
        return network_from_text(text, name=self.name, input_size=(height, width)).eval()


ARCHS: tuple[DarknetArch, ...] = (
    DarknetArch("darknet19", darknet19_body, (256, 256),
                "Darknet-19 (YOLO9000, Redmon & Farhadi 2017; darknet19.cfg), 256x256"),
    DarknetArch("darknet19_448", darknet19_body, (448, 448),
                "Darknet-19 fine-tuned at 448x448 (YOLO9000; darknet19_448.cfg)"),
    DarknetArch("darknet_reference", reference_body, (256, 256),
                "Darknet Reference model (pjreddie.com/darknet/imagenet; darknet.cfg), 256x256"),
    DarknetArch("tiny_darknet", tiny_body, (224, 224),
                "Tiny Darknet (pjreddie.com/darknet/tiny-darknet; tiny.cfg), 224x224"),
    DarknetArch("extraction", extraction_body, (224, 224),
                "Extraction, Darknet's GoogLeNet-sized classifier (extraction.cfg), 224x224"),
)  # fmt: skip


def _register_all() -> None:
    for arch in ARCHS:
        register(ZooEntry(
            name=arch.name, build=arch.build, input_size=arch.input_size, num_classes=1000,
            family="darknet", preprocess="darknet", description=arch.description,
            cfg_text=arch.cfg_text,
        ))  # fmt: skip


_register_all()
