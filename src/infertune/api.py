"""The Python API behind every CLI command. Each function takes a model source (or a
ModelHandle) and plain options and returns plain, JSON-ready data."""
from __future__ import annotations

from typing import Any

from .load import load_model
from .types import ModelHandle

EXPORT_FORMATS = ("onnx",)


def profile(model: str | ModelHandle, *, input_size: tuple[int, int] | None = None,
            **load_options: Any) -> dict[str, Any]:
    """Static profile: params, MACs, bytes and intensity per layer and in total."""
    from .profile import profile_model

    handle = load_model(model, input_size=input_size, **load_options)
    result = profile_model(handle, input_size=input_size)
    return {"source": handle.source, "format": handle.format, **result}


def export(model: str | ModelHandle, fmt: str, out: str, *, opset: int = 17,
           input_size: tuple[int, int] | None = None, **load_options: Any) -> dict[str, Any]:
    """Exports a model to `fmt`; the file appears at `out` only once it is complete."""
    from .errors import ConfigError

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; available: {', '.join(EXPORT_FORMATS)}")
    if opset < 17:
        raise ConfigError(f"opset must be 17 or newer, not {opset}")
    from .export import export_onnx

    handle = load_model(model, input_size=input_size, **load_options)
    return {"source": handle.source, "format": fmt,
            **export_onnx(handle, out, opset=opset, input_size=input_size)}


def zoo_list(names: list[str] | None = None) -> list[dict[str, Any]]:
    """The built-in architectures with their native input size, params and MACs."""
    from .profile import profile_model
    from .zoo import ZOO

    rows = []
    for name in names or ZOO.names():
        entry = ZOO.get(name)
        prof = profile_model(load_model(name))
        rows.append({"name": name, "family": entry.family, "input_size": list(entry.input_size),
                     "num_classes": entry.num_classes, "params": prof["params"],
                     "macs": prof["macs"], "preprocess": entry.preprocess,
                     "description": entry.description})
    return rows
