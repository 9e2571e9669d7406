"""ONNX files -> ModelHandle (format "onnx"). The file is checked, never modified.

A detector gets meta["detection"] (a DetectionSpec) when LoadOptions say how to decode it
(`detector`, `anchors`, `num_classes`) or when its one output is unambiguously an
Ultralytics-style (B, 4 + classes, N) tensor (tasks/detection/onnx_layout.py); an
Ultralytics export's `names` metadata become meta["class_names"].
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..errors import ConfigError, ModelFileError, UnsupportedModel
from ..tasks.detection.onnx_layout import onnx_detection_spec
from ..types import InputSpec, ModelHandle

if TYPE_CHECKING:
    from . import LoadOptions


def read_onnx(path: Path):
    """Loads and checks an ONNX model proto; any failure is a one-line ModelFileError.

    External data is read only after every tensor's `location` has been checked to name a
    regular file inside the model's folder (see `check_external_data`).
    """
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, but several others are possible
        raise ModelFileError(f"not a valid ONNX file ({_first_line(exc)})", path=path) from None
    if check_external_data(model, path):
        try:
            onnx.load_external_data_for_model(model, str(path.parent))
        except Exception as exc:  # missing file, offset/length beyond its end...
            raise ModelFileError(f"cannot read its external data ({_first_line(exc)})",
                                 path=path) from None
    if not model.graph.node:
        raise ModelFileError("not a valid ONNX file (the graph has no nodes)", path=path)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelFileError(f"ONNX model fails the checker: {_first_line(exc)}", path=path) from None
    return model


def _graph_tensors(graph) -> Iterator:
    """Every TensorProto of a graph: initializers, sparse ones, node attributes, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes) -> Iterator:
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _graph_tensors(sub)


def external_locations(model) -> list[str]:
    """The `location` of every tensor stored as external data ('' when one has none)."""
    from onnx import TensorProto

    tensors = [*_graph_tensors(model.graph),
               *(t for function in model.functions for t in _node_tensors(function.node))]
    return [next((e.value for e in t.external_data if e.key == "location"), "")
            for t in tensors if t.data_location == TensorProto.EXTERNAL]


def check_external_data(model, path: Path) -> bool:
    """Refuses external-data locations that could read outside the model's folder.

    A location must be a relative path that, with every symlink resolved, names an existing
    regular file inside the folder holding `path` (an ONNX file from elsewhere must not make
    us read /etc/shadow or ../../secrets). Returns True if the model has external data.

    Raises:
        ModelFileError: a location that is empty, absolute, escapes the folder or is missing.
    """
    locations = external_locations(model)
    folder = path.resolve().parent
    for location in dict.fromkeys(locations):
        target = _inside(folder, location)
        if target is None:
            raise ModelFileError(f"refusing external data at {location[:200]!r}: it must be a "
                                 "relative path to a file inside the model's folder", path=path)
        if not target.is_file():
            raise ModelFileError(f"external data file {location[:200]!r} is missing (expected "
                                 "next to the model)", path=path)
    return bool(locations)


def _inside(folder: Path, location: str) -> Path | None:
    """`folder/location` with symlinks resolved, or None if that is not strictly inside."""
    if not location or "\0" in location or Path(location).is_absolute():
        return None
    try:
        target = (folder / location).resolve()
    except (OSError, RuntimeError, ValueError):  # name too long, symlink loop
        return None
    return target if folder in target.parents else None


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


def _dims(value_info) -> tuple:
    """An output's dims after the batch: ints, None where symbolic or unknown."""
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in shape.dim[1:])


def output_dims(model, path: Path, spec: InputSpec, resized: bool) -> list[tuple[str, tuple]]:
    """(name, dims after the batch) of each output. Where the file leaves a dim symbolic, or
    the input is resized (--input-size), one ONNX Runtime run on zeros of the input's shape
    gives them (ONNX shape inference cannot follow Darknet's computed max-pool padding);
    if that run fails, the declared dims stand (unknown ones None)."""
    declared = [(o.name, _dims(o)) for o in model.graph.output]
    if not resized and all(d is not None for _, dims in declared for d in dims):
        return declared
    import numpy as np
    import onnxruntime as ort

    batch = spec.shape[0] if isinstance(spec.shape[0], int) else 1
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        arrays = session.run(None, {spec.name: np.zeros((batch, *spec.chw), spec.dtype)})
    except Exception:  # noqa: BLE001 - a help only: the layout check names what is unknown
        return declared
    return [(name, tuple(int(d) for d in a.shape[1:])) for (name, _), a in zip(declared, arrays)]


def class_names_of(model, classes: int) -> list[str] | None:
    """An Ultralytics export's `names` metadata ("{0: 'person', ...}") when it lists exactly
    classes 0..classes-1 (read with literal_eval: no code runs)."""
    text = next((p.value for p in model.metadata_props if p.key == "names"), None)
    if text is None or len(text) > 200_000:
        return None
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(names, dict) or sorted(names) != list(range(classes)):
        return None
    return [str(names[k]) for k in range(classes)]


def _detection_meta(model, path: Path, spec: InputSpec, opts: "LoadOptions") -> dict:
    """{"detection": spec[, "class_names"]} for a detector (module docstring), else {}."""
    outputs = model.graph.output
    told = opts.detector is not None or opts.anchors is not None
    if not told and not (len(outputs) == 1 and len(outputs[0].type.tensor_type.shape.dim) == 3):
        return {}
    det = onnx_detection_spec(output_dims(model, path, spec, opts.input_size is not None),
                              spec.chw[1:], detector=opts.detector, anchors=opts.anchors,
                              classes=opts.num_classes)
    if det is None:
        return {}
    names = class_names_of(model, det.classes)
    return {"detection": det, **({"class_names": names} if names else {})}


def load_onnx(path: Path, opts: "LoadOptions") -> ModelHandle:
    model = read_onnx(path)
    spec = input_spec_of(model, path, opts.input_size)
    outputs = [o.name for o in model.graph.output]
    try:
        detection = _detection_meta(model, path, spec, opts)
    except ConfigError as exc:  # a layout that does not fit: name the file
        raise ConfigError(str(exc), path=path) from None
    return ModelHandle(
        format="onnx",
        path=str(path.resolve()),
        input_spec=spec,
        name=path.name,
        source=str(path),
        meta={"family": "onnx", "opset": max((o.version for o in model.opset_import
                                              if o.domain in ("", "ai.onnx")), default=None),
              "outputs": outputs, "producer": model.producer_name or None, **detection},
    )
