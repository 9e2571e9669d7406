"""Per-node counts of an ONNX graph, read statically at batch 1 (the input file is only read).

Shapes come from `onnx.shape_inference.infer_shapes(data_prop=True)` on a copy whose image
input has a concrete shape (a symbolic batch becomes 1; data propagation resolves the
Shape->Gather->Concat->Reshape chains torch emits for a dynamic batch). Where inference still
leaves a shape open, the copy is run once in ONNX Runtime with every open tensor exposed as
an output.

Constants are initializers, Constant nodes and Identity nodes of a constant (both of the
latter make no row). A constant counts as a parameter when it can be model data: rank >= 1
and not int64/bool/string (int64 constants are shapes, axes and indices; rank-0 ones are
scalars such as an epsilon). BatchNormalization's mean and variance count as buffers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelFileError
from .rows import LayerStats, assemble, strip_batch

# op -> index of the weight input; MACs = output elements x prod(weight dims after the first).
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "FusedConv": 1}
# MACs = output elements x the reduced dimension (the last dim of the first operand).
_MATMUL_OPS = ("MatMul", "MatMulInteger", "QLinearMatMul")
_BN_BUFFER_INPUTS = (3, 4)  # BatchNormalization(X, scale, B, input_mean, input_var)


@dataclass(frozen=True)
class _Tensor:
    """What the profile needs of a tensor: dims (None = unknown) and element type."""

    dims: tuple | None
    elem_type: int
    origin: str = ""  # for constants: the initializer/Constant output it aliases

    @property
    def known(self) -> bool:
        return self.dims is not None and all(isinstance(d, int) for d in self.dims)

    @property
    def numel(self) -> int:
        return math.prod(self.dims) if self.known else 0

    @property
    def nbytes(self) -> int:
        return self.numel * _itemsize(self.elem_type)

    def is_weight(self) -> bool:
        import onnx

        excluded = (onnx.TensorProto.INT64, onnx.TensorProto.BOOL, onnx.TensorProto.STRING)
        return bool(self.dims) and self.elem_type not in excluded


def _itemsize(elem_type: int) -> int:
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except Exception:  # undefined/string types carry no fixed width
        return 0


def profile_onnx(path: str | Path, input_name: str, chw: tuple[int, int, int], *,
                 name: str | None = None) -> dict[str, Any]:
    """Profiles the ONNX file at `path` at batch 1; see the package docstring for the numbers."""
    import onnx

    path = Path(path)
    try:
        # Dims and dtypes live in the proto itself: the weights' bytes are not needed.
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelFileError(f"not a valid ONNX file ({_first_line(exc)})", path=path) from None
    fixed = with_concrete_input(model, input_name, chw)
    consts = constants(fixed.graph)
    shapes = infer_shapes(fixed, path)
    layers = node_rows(fixed.graph, consts, shapes)
    outputs = [_shape_entry(shapes.get(o.name)) for o in fixed.graph.output]
    return assemble(name or path.name, chw, outputs[0] if len(outputs) == 1 else outputs, layers)


def with_concrete_input(model, input_name: str, chw: tuple[int, int, int]):
    """A copy whose graph inputs have concrete shapes and whose stale shape facts are gone.

    A symbolic batch becomes 1. A batch fixed in the file is kept: graphs exported with a
    fixed batch often bake it into Reshape targets, so changing it would break inference
    (their counts are then for that batch).
    """
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    initializers = {init.name for init in fixed.graph.initializer}
    # Older exporters list the weights as graph inputs too: those are not inputs to fix.
    real = [inp for inp in fixed.graph.input if inp.name not in initializers]
    if real and input_name not in {inp.name for inp in real}:
        input_name = real[0].name  # a spec naming no input: the image is the first one
    for inp in real:
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = 1
        if inp.name == input_name and len(dims) == 4:
            for dim, value in zip(list(dims)[1:], chw):
                dim.Clear()
                dim.dim_value = int(value)
    # Recorded intermediate/output shapes carry the symbolic batch: let inference redo them.
    del fixed.graph.value_info[:]
    for out in fixed.graph.output:
        out.type.tensor_type.ClearField("shape")
    return fixed


def constants(graph) -> dict[str, _Tensor]:
    """Initializers, Constant outputs and Identity-of-constant outputs, by tensor name."""
    consts = {init.name: _Tensor(tuple(init.dims), init.data_type, init.name)
              for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            consts[node.output[0]] = _constant_value(node)
        elif node.op_type == "Identity" and node.input and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]
    return consts


def _constant_value(node) -> _Tensor:
    import onnx

    out = node.output[0]
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if attr.name == "value":
            return _Tensor(tuple(value.dims), value.data_type, out)
        if attr.name == "sparse_value":
            return _Tensor(tuple(value.dims), value.values.data_type, out)
        scalar = not attr.name.endswith("s")
        dims = () if scalar else (len(value),)
        elem = {"float": onnx.TensorProto.FLOAT, "int": onnx.TensorProto.INT64}.get(
            attr.name.removeprefix("value_").rstrip("s"), onnx.TensorProto.STRING)
        return _Tensor(dims, elem, out)
    return _Tensor(None, onnx.TensorProto.UNDEFINED, out)


def infer_shapes(fixed, path: Path) -> dict[str, _Tensor]:
    """Shapes of every tensor: ONNX shape inference, then ONNX Runtime for what it left open."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True)
    except Exception:  # an op inference rejects: fall back to what the graph declares
        inferred = fixed
    graph = inferred.graph
    shapes = {v.name: _tensor_of(v) for v in [*graph.input, *graph.value_info, *graph.output]}
    shapes.update(constants(fixed.graph))
    wanted = [o for node in fixed.graph.node for o in node.output if o]
    missing = [o for o in wanted if o not in shapes or not shapes[o].known]
    if missing:
        shapes.update(_ort_shapes(fixed, path, missing))
    return shapes


def _tensor_of(value_info) -> _Tensor:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return _Tensor(None, tensor_type.elem_type)
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in tensor_type.shape.dim)
    return _Tensor(dims, tensor_type.elem_type)


def _ort_shapes(fixed, path: Path, names: list[str]) -> dict[str, _Tensor]:
    """Runs the copy once on zeros with `names` exposed as outputs; {} if that cannot be done."""
    import numpy as np
    import onnx

    try:
        import onnxruntime as ort

        probe = onnx.ModelProto()
        probe.CopyFrom(fixed)
        onnx.load_external_data_for_model(probe, str(path.parent))
        probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(probe.SerializeToString(), opts,
                                       providers=["CPUExecutionProvider"])
        feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape],
                                  dtype=_np_dtype(i.type)) for i in session.get_inputs()}
        values = session.run(names, feeds)
    except Exception:  # too large to serialise, custom ops...: keep the open shapes
        return {}
    return {n: _Tensor(tuple(int(d) for d in np.shape(v)), _onnx_type(v))
            for n, v in zip(names, values)}


def _np_dtype(ort_type: str):
    import numpy as np

    table = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
             "tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
             "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(bool)": np.bool_}
    return table.get(ort_type, np.float32)


def _onnx_type(array) -> int:
    import numpy as np
    import onnx

    return onnx.helper.np_dtype_to_tensor_dtype(np.asarray(array).dtype)


def node_rows(graph, consts: dict[str, _Tensor], shapes: dict[str, _Tensor]) -> list[LayerStats]:
    """One row per node (Constant and Identity-of-constant nodes are data, not layers)."""
    claimed: set[str] = set()
    rows = []
    for index, node in enumerate(graph.node):
        if node.output and node.output[0] in consts and node.op_type in ("Constant", "Identity"):
            continue
        row = LayerStats(node.name or f"{node.op_type}_{index}", node.op_type, calls=1)
        read = 0
        for position, inp in enumerate(node.input):
            if inp in consts:
                _claim(row, node, position, consts[inp], claimed)
                read += consts[inp].nbytes
            elif inp:
                read += shapes[inp].nbytes if inp in shapes else 0
        outputs = [shapes.get(o) for o in node.output if o]
        row.activation_bytes = sum(t.nbytes for t in outputs if t is not None)
        row.mac_bytes = read + row.activation_bytes
        row.macs = node_macs(node, lambda n: shapes.get(n) or consts.get(n))
        entries = [_shape_entry(t) for t in outputs]
        row.output_shape = entries[0] if len(entries) == 1 else entries
        rows.append(row)
    return rows


def _claim(row: LayerStats, node, position: int, const: _Tensor, claimed: set[str]) -> None:
    """Counts a constant input as this row's params/buffers unless an earlier node did."""
    if not const.is_weight() or const.origin in claimed:
        return
    claimed.add(const.origin)
    if node.op_type == "BatchNormalization" and position in _BN_BUFFER_INPUTS:
        row.buffers += const.numel
    else:
        row.params += const.numel
    row.weight_bytes += const.nbytes


def node_macs(node, tensor) -> int:
    """MACs of Conv/ConvTranspose/Gemm/MatMul (and their quantized forms); 0 otherwise.

    Args:
        node: the NodeProto.
        tensor: name -> _Tensor (or None when unknown).
    """
    import onnx

    op = node.op_type
    out = tensor(node.output[0]) if node.output else None
    if out is None or not out.known:
        return 0
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if op in _CONV_WEIGHT or op == "ConvTranspose":
        weight = tensor(node.input[1 if op == "ConvTranspose" else _CONV_WEIGHT[op]])
        if weight is None or not weight.known:
            return 0
        per_element = math.prod(weight.dims[1:])
        if op == "ConvTranspose":  # each input element scatters over out_ch/group x kernel
            source = tensor(node.input[0])
            return source.numel * per_element if source is not None else 0
        return out.numel * per_element
    if op == "Gemm":
        a = tensor(node.input[0])
        if a is None or not a.known:
            return 0
        return out.numel * a.dims[0 if attrs.get("transA", 0) else 1]
    if op in _MATMUL_OPS:
        a = tensor(node.input[0])
        return out.numel * a.dims[-1] if a is not None and a.known and a.dims else 0
    return 0


def _shape_entry(tensor: _Tensor | None) -> list | None:
    if tensor is None or tensor.dims is None:
        return None
    return strip_batch(tensor.dims)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
