"""Which rows of a per-layer profile (`runtimes.layer_time`) belong to which quantizable layer
(ONNX node names of the pre-processed graph), for mixed_precision's rank=cost.

The runtimes rename what they run, so each is matched by what its names were seen to mean
(ORT 1.2x and OpenVINO 2025 on x86, checked on small conv nets):

ONNX Runtime (rows are nodes of the *optimised* graph; `ort_layer_ms`):
- a node left as it was keeps its ONNX name (a Gemm, a Conv ORT did not fuse, and in a QDQ
  model the float Conv it runs on DequantizeLinear'd weights when it does not fuse them);
- QDQ fusion (DequantizeLinear -> Conv -> QuantizeLinear into QLinearConv, likewise QGemm)
  names the new node `<conv>_token_<n>`;
- Conv fused with its activation (FusedConv) keeps the Conv's name;
- the NCHWc layout transformer (level ALL on AVX2/AVX-512) names its Conv `<T>_nchwc`,
  T being the output tensor of the *last* op fused into it: the activation (`/Relu_output_0`)
  or the residual Add it sums into. T is walked back to the Conv through activations and
  through an Add's one input that has a single consumer (ORT fuses a Sum only into a Conv
  whose output nothing else reads); two such inputs would be ambiguous: not matched.
Counted for a layer: its compute node (with whatever float kernel fused into it: the
activation, a residual Add) and, in the INT8 model, the DequantizeLinear nodes of its own
weight and bias (they serve only this layer and run on every inference where ORT does not
fold them into the layer), the ops the float kernel fused (so both sides compute the same
thing), and the Q/DQ nodes between the layer and those ops. Not counted: the Q/DQ of the
layer's input and of its unit's output (shared with the neighbouring layers, and still there
while a neighbour is INT8), ORT's Transpose nodes around QLinearConv (NHWC) and NCHWc
ReorderInput/ReorderOutput (their names do not say which layer they serve).

OpenVINO (rows are executed nodes of the CPU plugin's graph; `ov_layer_ms`): each row
carries `fused_from`, the model ops fused into it. A layer's ops are those converted from its
ONNX node (the friendly name is the node's name or starts with `<name>/`, as in
`_nncf_quant.ov_names`) and the op producing its output tensor (OpenVINO renames the producer
of a graph output after the output, e.g. a last Gemm's bias Add becomes `output`). A row whose
fused ops touch exactly one layer is that layer's; a Reorder the plugin inserts is named
`<src>_<layouts>_<dst>` and counted for the layer of `dst`. FakeQuantize rows on activations
are not counted (named after the tensor they quantize, shared by its readers).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh")
SUMS = ("Add", "Sum")
QDQ = ("QuantizeLinear", "DequantizeLinear")
_TOKEN = re.compile(r"(_token_\d+)+$")
NCHWC_SUFFIX = "_nchwc"


@dataclass
class Graph:
    """An ONNX graph indexed by node name and by tensor (producer, readers)."""

    nodes: dict[str, Any]
    producer: dict[str, Any]
    readers: dict[str, list[Any]]
    initializers: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path) -> "Graph":
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        readers: dict[str, list[Any]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                readers[name].append(node)
        return cls({n.name: n for n in graph.node},
                   {out: n for n in graph.node for out in n.output}, dict(readers),
                   {init.name for init in graph.initializer})

    def only_reader(self, tensor: str):
        found = self.readers.get(tensor, [])
        return found[0] if len(found) == 1 else None


def ort_row_node(name: str, graph: Graph, op: str = "") -> tuple[str, list[str]] | None:
    """The ONNX node (of `graph`) an ORT profile row computes, and the ops fused into it
    that follow it (activation, Sum), or None when the name does not say."""
    if name in graph.nodes:
        return name, _fused_activation(name, graph) if op == "FusedConv" else []
    base = _TOKEN.sub("", name)
    if base != name and base in graph.nodes:
        return base, []
    if name.endswith(NCHWC_SUFFIX):
        return _walk_back(name[: -len(NCHWC_SUFFIX)], graph)
    return None


def _fused_activation(conv: str, graph: Graph) -> list[str]:
    reader = graph.only_reader(graph.nodes[conv].output[0])
    return [reader.name] if reader is not None and reader.op_type in ACTIVATIONS else []


def _walk_back(tensor: str, graph: Graph, weighted: Sequence[str] = ("Conv",)):
    chain: list[str] = []
    node = graph.producer.get(tensor)
    while node is not None:
        if node.op_type in weighted:
            return node.name, chain[::-1]
        chain.append(node.name)
        if node.op_type in ACTIVATIONS:
            node = graph.producer.get(node.input[0])
        elif node.op_type in SUMS:
            fed = [t for t in node.input if graph.only_reader(t) is node and _conv_fed(t, graph)]
            if len(fed) != 1:
                return None  # ambiguous: which input's Conv ORT fused the sum into
            node = graph.producer.get(fed[0])
        else:
            return None
    return None


def _conv_fed(tensor: str, graph: Graph) -> bool:
    node = graph.producer.get(tensor)
    while node is not None and node.op_type in ACTIVATIONS:
        node = graph.producer.get(node.input[0])
    return node is not None and node.op_type == "Conv"


@dataclass
class Matched:
    """Per-layer ms from one profile, and what could not be attributed."""

    layer_ms: dict[str, float]
    unattributed_ms: float
    fused: dict[str, list[str]] = field(default_factory=dict)  # layer -> ops fused into it


def ort_float_ms(rows: Sequence[Mapping[str, Any]], graph: Graph,
                 layers: Sequence[str]) -> Matched:
    """Per-layer ms of a float model's ORT profile (`graph`: the timed ONNX file)."""
    wanted, out, fused, other = set(layers), defaultdict(float), defaultdict(list), 0.0
    for row in rows:
        hit = ort_row_node(row["name"], graph, row.get("op", ""))
        if hit is None or hit[0] not in wanted:
            other += row["ms"]
            continue
        out[hit[0]] += row["ms"]
        fused[hit[0]] += [n for n in hit[1] if n not in fused[hit[0]]]
    return Matched(dict(out), round(other, 6), dict(fused))


def ort_int8_ms(rows: Sequence[Mapping[str, Any]], graph: Graph, layers: Sequence[str],
                fused: Mapping[str, list[str]]) -> Matched:
    """Per-layer ms of the QDQ model's ORT profile; `fused`: the float kernel's fused ops
    per layer (ort_float_ms), counted here too so both sides compute the same thing."""
    owner = {node: layer for layer in layers if layer in graph.nodes
             for node in int8_unit(layer, graph, fused.get(layer, []))}
    out, other = defaultdict(float), 0.0
    for row in rows:
        hit = ort_row_node(row["name"], graph)
        if hit is None or hit[0] not in owner:
            other += row["ms"]
            continue
        out[owner[hit[0]]] += row["ms"]
    return Matched(dict(out), round(other, 6))


def int8_unit(layer: str, graph: Graph, fused: Iterable[str]) -> list[str]:
    """The QDQ model's nodes counted for `layer` (module docstring)."""
    node = graph.nodes[layer]
    unit = [layer]
    for tensor in node.input[1:]:  # weight and bias, each behind its own DequantizeLinear
        dq = graph.producer.get(tensor)
        if (dq is not None and dq.op_type == "DequantizeLinear"
                and dq.input[0] in graph.initializers and graph.only_reader(tensor) is node):
            unit.append(dq.name)
    fused = set(fused)
    tensor, between = node.output[0], []
    while fused:
        reader = graph.only_reader(tensor)
        if reader is None:
            break
        if reader.op_type in QDQ:
            between.append(reader.name)
        elif reader.name in fused:
            unit += between + [reader.name]
            between = []
            fused.discard(reader.name)
        else:
            break
        tensor = reader.output[0]
    return unit


def ov_layer_ms(rows: Sequence[Mapping[str, Any]], ov_ops: Mapping[str, set[str]]) -> Matched:
    """Per-layer ms of an OpenVINO PERF_COUNT profile; `ov_ops`: layer -> the names of the
    model ops that are that layer's (ov_layer_ops)."""
    owner: dict[str, set[str]] = defaultdict(set)
    for layer, names in ov_ops.items():
        for name in names:
            owner[name].add(layer)
    row_layer: dict[str, str] = {}
    for row in rows:
        hits = {layer for name in row.get("fused_from", []) for layer in owner.get(name, ())}
        if len(hits) == 1:
            row_layer[row["name"]] = hits.pop()
    out, other = defaultdict(float), 0.0
    for row in rows:
        layer = row_layer.get(row["name"])
        if layer is None and row.get("op") == "Reorder":
            layer = next((l for dst, l in row_layer.items()
                          if row["name"].endswith("_" + dst)), None)
        if layer is None:
            other += row["ms"]
        else:
            out[layer] += row["ms"]
    return Matched(dict(out), round(other, 6))


def ov_layer_ops(ir_path, onnx_graph: Graph, layers: Sequence[str]) -> dict[str, set[str]]:
    """Layer -> friendly names of the IR's ops converted from it (module docstring)."""
    import openvino as ov

    model = ov.Core().read_model(str(ir_path))
    ops = [(op.get_friendly_name(), {n for o in op.outputs() for n in o.get_names()})
           for op in model.get_ordered_ops()]
    found = {}
    for layer in layers:
        outputs = set(onnx_graph.nodes[layer].output) if layer in onnx_graph.nodes else set()
        found[layer] = {name for name, tensors in ops
                        if name == layer or name.startswith(layer + "/") or tensors & outputs}
    return found
