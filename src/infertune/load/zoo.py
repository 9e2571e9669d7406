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


def load_zoo(name: str, opts: "LoadOptions") -> ModelHandle:
    from ..zoo import ZOO

    if name not in ZOO:
        raise ConfigError(f"{name}: not a file, and {ZOO.unknown_message(name)}")
    entry = ZOO.get(name)
    height, width = opts.input_size or entry.input_size
    num_classes = opts.num_classes or entry.num_classes
    module = seeded(opts.seed, entry.build, num_classes, (height, width)).eval()
    meta = {"family": entry.family, "num_classes": num_classes, "preprocess": entry.preprocess,
            "weights": "random", "seed": opts.seed, "zoo": name}
    if entry.weights is not None:
        meta.update(_trained(entry, module, num_classes))
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
                                                          "top5", "top5_ci")},
            "record": {k: record.get(k) for k in ("macs", "params", "epochs_done",
                                                  "train_seconds", "weights_sha256")}}
