"""ONNX graph helpers shared by the graph passes (fold_bn, fuse_activation, merge_siblings,
cleanup). Imported only when a pass runs on an ONNX model: onnx, numpy and onnxruntime are
imported here at the top, so `import infertune.passes` must never import this module.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ModelFileError, UnsupportedModel
from ..types import ModelHandle
from .base import PassContext, workfile

# protobuf cannot hold a message of 2 GiB or more: past this, weights go to `<file>.data`.
_PROTO_LIMIT = 2**31 - 2**24


def load(model: ModelHandle) -> onnx.ModelProto:
    """The handle's ONNX proto, external data included (a fresh copy: safe to edit)."""
    try:
        return onnx.load(str(model.path), load_external_data=True)
    except Exception as exc:
        raise ModelFileError(f"cannot read ONNX file ({_first_line(exc)})", path=model.path) from None


def save(proto: onnx.ModelProto, ctx: PassContext, model: ModelHandle, tag: str) -> Path:
    """Writes `proto` to a fresh file in the pipeline's workdir, named after the model and pass."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(str(model.path)).stem)
    out = workfile(ctx, f"{stem[:50]}.{tag}", ".onnx")
    if proto.ByteSize() < _PROTO_LIMIT:
        onnx.save(proto, str(out))
    else:
        onnx.save(proto, str(out), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=f"{out.name}.data", size_threshold=1024)
    return out


def derived(model: ModelHandle, path: Path, **meta: Any) -> ModelHandle:
    """A new onnx handle for `path`, keeping the input spec, name and source of `model`."""
    return ModelHandle(format="onnx", path=str(path), input_spec=model.input_spec,
                       name=model.name, source=model.source, meta={**model.meta, **meta})


def constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Every tensor whose value is known without running the graph: initializers, Constant
    node outputs, and Identity nodes of those (the torch exporter routes parameters through
    Identity nodes when a module is reached more than one way)."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # topological order: an Identity's input is known before it
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            value = _constant_value(node)
            if value is not None:
                values[node.output[0]] = value
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            value = onnx.helper.get_attribute_value(attr)
            return np.asarray(value, np.float32 if "float" in attr.name else np.int64)
    return None


def remove_dead_nodes(graph: onnx.GraphProto) -> int:
    """Removes nodes none of whose results reach a graph output, then unread initializers;
    returns how many nodes went."""
    needed = graph_outputs(graph)
    nodes = list(graph.node)
    live = []
    for i in reversed(range(len(nodes))):  # graph.node is in topological order
        if any(name in needed for name in nodes[i].output):
            live.append(i)
            needed.update(name for name in nodes[i].input if name)
            needed.update(_subgraph_inputs(nodes[i]))
    keep_only(graph, sorted(live))
    prune_initializers(graph)
    return len(nodes) - len(live)


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Names the node's subgraphs (If/Loop/Scan bodies) read from the enclosing graph."""
    names: set[str] = set()
    for attr in node.attribute:
        subgraphs = ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)
        for sub in subgraphs:
            names.update(name for n in sub.node for name in n.input if name)
    return names


def add_initializer(graph: onnx.GraphProto, value: np.ndarray, name: str) -> str:
    """Adds `value` under a name not used yet in the graph (based on `name`); returns it."""
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
    taken |= {i.name for i in graph.input}
    unique, k = name, 1
    while unique in taken:
        unique, k = f"{name}_{k}", k + 1
    graph.initializer.append(numpy_helper.from_array(value, unique))
    return unique


def consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """Tensor name -> the nodes that read it."""
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            if name:
                users.setdefault(name, []).append(node)
    return users


def graph_outputs(graph: onnx.GraphProto) -> set[str]:
    return {o.name for o in graph.output}


def attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attributes as plain Python values."""
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Makes every node that reads `old` read `new` instead."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def remove_nodes(graph: onnx.GraphProto, doomed: Iterable[onnx.NodeProto]) -> None:
    """Removes these nodes (matched by content: protobuf wrappers are not stable identities)."""
    for node in list(doomed):
        graph.node.remove(node)


def keep_only(graph: onnx.GraphProto, indices: list[int]) -> None:
    """Keeps the nodes at these positions (ascending), drops the rest."""
    if len(indices) == len(graph.node):
        return
    kept = [onnx.NodeProto.FromString(graph.node[i].SerializeToString()) for i in indices]
    del graph.node[:]
    graph.node.extend(kept)


def replace_nodes(graph: onnx.GraphProto, old: list[onnx.NodeProto],
                  new: list[onnx.NodeProto]) -> None:
    """Puts `new` where the first of `old` was and removes `old`. Readers of `old`'s outputs
    come after the first of them, so a graph in topological order stays in it. Node
    references taken before this call are stale after it (the list is rebuilt)."""
    nodes = list(graph.node)
    doomed = [i for i, n in enumerate(nodes) if any(n == o for o in old)]
    kept = [n for i, n in enumerate(nodes) if i not in set(doomed)]
    position = doomed[0] - sum(1 for i in doomed if i < doomed[0])
    rebuilt = [onnx.NodeProto.FromString(n.SerializeToString()) for n in kept]
    rebuilt[position:position] = new
    del graph.node[:]
    graph.node.extend(rebuilt)


def prune_initializers(graph: onnx.GraphProto) -> int:
    """Drops initializers (and their graph-input entries) no node reads; returns how many."""
    used = {name for node in graph.node for name in node.input} | graph_outputs(graph)
    unused = [init for init in graph.initializer if init.name not in used]
    names = {init.name for init in unused}
    for init in unused:
        graph.initializer.remove(init)
    for inp in [i for i in graph.input if i.name in names]:
        graph.input.remove(inp)
    return len(unused)


def op_counts(proto: onnx.ModelProto) -> dict[str, int]:
    """Nodes per op type ("com.microsoft.FusedConv" for ops outside the default domain)."""
    return dict(Counter(f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
                        for n in proto.graph.node))


def opset(proto: onnx.ModelProto) -> int:
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else 1


def drop_unused_domains(proto: onnx.ModelProto) -> None:
    """Removes opset imports of domains no node uses (ORT's optimizer writes one for every
    domain it knows, which other tools then have to resolve)."""
    used = {n.domain for n in proto.graph.node} | {"", "ai.onnx"}
    keep = [o for o in proto.opset_import if o.domain in used]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)


def ort_optimize(source: Path, out: Path, level: str) -> None:
    """Runs ONNX Runtime's graph optimizer at `level` ("basic" | "extended") on the CPU
    provider and saves the optimized graph to `out` (ORT writes it while building a session).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                   "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
    so.optimized_model_filepath = str(out)
    so.log_severity_level = 3
    try:
        ort.InferenceSession(str(source), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UnsupportedModel(f"ONNX Runtime cannot optimize this model: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
