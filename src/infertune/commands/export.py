"""`infertune export`: a model to ONNX (written atomically, checked against the source with
ONNX Runtime), or the pick of an optimize run as a Triton model repository."""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..export import export_onnx
from ..load import LoadOptions, load_model
from ..search.best import triton
from ..types import ModelHandle
from .options import ExportOptions

EXPORT_FORMATS = ("onnx",)


def run_export(model: str | ModelHandle, options: ExportOptions,
               load: LoadOptions = LoadOptions()) -> dict[str, Any]:
    """Exports a model to `options.fmt`; the file appears at `options.out` only once it is
    complete."""
    if options.fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {options.fmt!r}; available: "
                          f"{', '.join(EXPORT_FORMATS)}")
    if options.opset < 17:
        raise ConfigError(f"opset must be 17 or newer, not {options.opset}")
    handle = load_model(model, **vars(load))
    return {"source": handle.source, "format": options.fmt,
            **export_onnx(handle, options.out, opset=options.opset, input_size=load.input_size)}


def export_triton(run_dir: str, out: str) -> dict[str, Any]:
    """A Triton Inference Server model repository for the pick of the run in `run_dir`."""
    return triton(run_dir, out)
