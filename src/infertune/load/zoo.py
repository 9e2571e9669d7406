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
    return ModelHandle(
        format="torch",
        obj=module,
        input_spec=InputSpec(shape=("batch", 3, height, width)),
        name=name,
        source=name,
        meta={"family": entry.family, "num_classes": num_classes, "preprocess": entry.preprocess,
              "weights": "random", "seed": opts.seed, "zoo": name},
    )
