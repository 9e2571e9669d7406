"""ONNX files -> ModelHandle (format "onnx"). The file is checked, never modified."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelFileError, UnsupportedModel
from ..types import InputSpec, ModelHandle

if TYPE_CHECKING:
    from . import LoadOptions


def read_onnx(path: Path):
    """Loads and checks an ONNX model proto; any failure is a one-line ModelFileError."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=True)
    except Exception as exc:  # protobuf raises DecodeError, but several others are possible
        raise ModelFileError(f"not a valid ONNX file ({_first_line(exc)})", path=path) from None
    if not model.graph.node:
        raise ModelFileError("not a valid ONNX file (the graph has no nodes)", path=path)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelFileError(f"ONNX model fails the checker: {_first_line(exc)}", path=path) from None
    return model


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def graph_inputs(model) -> list:
    """The real inputs of the graph (older exporters also list initializers as inputs)."""
    initializers = {init.name for init in model.graph.initializer}
    return [inp for inp in model.graph.input if inp.name not in initializers]


def input_spec_of(model, path: Path, input_size: tuple[int, int] | None) -> InputSpec:
    import onnx

    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise UnsupportedModel(f"expected one image input, found {len(inputs)}", path=path)
    inp = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in inp.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise UnsupportedModel(f"input {inp.name!r} has shape {dims}; expected N×C×H×W", path=path)
    if not isinstance(dims[1], int):
        raise UnsupportedModel(f"input {inp.name!r} has a symbolic channel count", path=path)
    height, width = dims[2], dims[3]
    if input_size is not None:
        height, width = input_size
    elif not (isinstance(height, int) and isinstance(width, int)):
        raise UnsupportedModel(
            f"input {inp.name!r} has symbolic height/width {dims[2:]}; pass --input-size HxW", path=path)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type).name
    batch = dims[0] if isinstance(dims[0], int) else "batch"
    return InputSpec(name=inp.name, shape=(batch, dims[1], height, width), dtype=dtype)


def load_onnx(path: Path, opts: "LoadOptions") -> ModelHandle:
    model = read_onnx(path)
    spec = input_spec_of(model, path, opts.input_size)
    outputs = [o.name for o in model.graph.output]
    return ModelHandle(
        format="onnx",
        path=str(path.resolve()),
        input_spec=spec,
        name=path.name,
        source=str(path),
        meta={"family": "onnx", "opset": max((o.version for o in model.opset_import
                                              if o.domain in ("", "ai.onnx")), default=None),
              "outputs": outputs, "producer": model.producer_name or None},
    )
