"""`merge_siblings`: horizontal fusion. Sibling convolutions that read the same tensor with
the same kernel, strides, pads and dilations (group 1) become one wider convolution whose
output is split back into the original tensors: one large GEMM instead of several narrow
ones (the Inception-block case TensorRT exploits), an exact rewrite.

    x ─┬─ Conv(W1,b1) ─ y1          x ─ Conv([W1;W2;W3], [b1;b2;b3]) ─ Split ─┬─ y1
       ├─ Conv(W2,b2) ─ y2    →                                              ├─ y2
       └─ Conv(W3,b3) ─ y3                                                   └─ y3

With `with_activation` (default), when every sibling is followed by the same element-wise
activation (same op, same attributes) as its only consumer, the activation moves before the
Split too, so it runs once on the wide tensor. When all parts of the Split go, in order and
nowhere else, into one Concat on the channel axis (three 1×1 branches concatenated), Split
and Concat cancel and are both removed.

Whether it pays depends on the runtime, and is for measurement to say: on ONNX Runtime's
CPU provider (2 threads) an Inception-3a-sized block (192 channels at 28×28, siblings of
64/96/16 filters) ran 0.91x as fast merged (median of 7 interleaved rounds; the Split's copy
costs more than the wider GEMM saves there); the case it was made for is TensorRT on a GPU.

Works on ONNX graphs, which every runtime consumes (a torch model is exported first by the
pipeline); a torch.fx version is not provided: the ONNX rewrite serves every runtime but the
torch ones, and those gain little from it on a CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass

# Element-wise single-tensor activations that may move before the Split (Clip's min/max
# inputs must then be the same tensors for every sibling).
ACTIVATIONS = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish",
               "Elu", "Selu", "Softplus", "Mish", "Gelu")


@dataclass(frozen=True)
class MergeSiblingsConfig:
    """Options of merge_siblings.

    Attributes:
        min_group: merge groups of at least this many sibling convolutions (>= 2).
        with_activation: also merge an identical activation that follows every sibling.
    """

    min_group: int = 2
    with_activation: bool = True

    def __post_init__(self) -> None:
        if self.min_group < 2:
            raise ConfigError(f"min_group must be at least 2, not {self.min_group}")


@register_pass("merge_siblings", exact=True, config=MergeSiblingsConfig, accepts=("onnx",),
               description="merge sibling convs reading one tensor (same kernel/stride/pads) "
                           "into one wider conv + Split (exact)")
def apply(model: ModelHandle, config: MergeSiblingsConfig, ctx: PassContext) -> PassResult:
    """Merges every group of sibling convolutions of `model`; the input file is untouched."""
    from . import _onnx_graph as og

    proto = og.load(model)
    graph = proto.graph
    convs_before = og.op_counts(proto).get("Conv", 0)
    merged = []
    while True:  # one group at a time: each merge rebuilds the node list (stale references)
        groups = [g for g in sibling_groups(graph) if len(g) >= config.min_group]
        if not groups:
            break
        merged.append(merge_group(graph, groups[0], config.with_activation, og.opset(proto)))
    if not merged:
        return PassResult(model, False, "no sibling convolutions with one input and the same "
                                        "kernel, strides, pads and dilations",
                          {"summary": "nothing to merge", "groups_merged": 0,
                           "convs_before": convs_before, "convs_after": convs_before})
    og.remove_dead_nodes(graph)  # Constant/Identity nodes that only fed the merged convs
    convs_after = og.op_counts(proto).get("Conv", 0)
    out = og.save(proto, ctx, model, "merge_siblings")
    details = {"summary": f"{sum(len(g['convs']) for g in merged)} convolutions merged into "
                          f"{len(merged)} (Conv nodes {convs_before} → {convs_after})",
               "groups_merged": len(merged), "convs_before": convs_before,
               "convs_after": convs_after, "groups": merged}
    return PassResult(og.derived(model, out, siblings_merged=len(merged)), True, None, details)


def conv_key(node: Any, consts: dict) -> tuple | None:
    """What must be equal for two Convs to merge; None for a Conv that cannot merge at all."""
    from . import _onnx_graph as og

    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
        return None
    if node.input[1] not in consts or (len(node.input) > 2 and node.input[2] and node.input[2] not in consts):
        return None
    a = og.attrs(node)
    if a.get("group", 1) != 1 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    w = consts[node.input[1]]
    spatial = w.ndim - 2
    return (node.input[0], w.shape[1:], w.dtype.str,
            tuple(a.get("strides", [1] * spatial)), tuple(a.get("pads", [0] * 2 * spatial)),
            tuple(a.get("dilations", [1] * spatial)))


def sibling_groups(graph: Any) -> list[list[Any]]:
    """Groups of mergeable Conv nodes, in graph order."""
    from . import _onnx_graph as og

    consts = og.constants(graph)
    groups: dict[tuple, list[Any]] = {}
    for node in graph.node:
        key = conv_key(node, consts)
        if key is not None:
            groups.setdefault(key, []).append(node)
    return list(groups.values())


def merge_group(graph: Any, group: list[Any], with_activation: bool, opset: int) -> dict[str, Any]:
    """Replaces `group` by one Conv (+ activation) + Split in place; returns what it did."""
    import numpy as np
    from onnx import helper

    from . import _onnx_graph as og

    consts = og.constants(graph)
    weights = [consts[n.input[1]] for n in group]
    biases = [consts[n.input[2]] if len(n.input) > 2 and n.input[2]
              else np.zeros(w.shape[0], w.dtype) for n, w in zip(group, weights)]
    stem = group[0].name or group[0].output[0]
    w_name = og.add_initializer(graph, np.concatenate(weights), f"{stem}.merged_weight")
    b_name = og.add_initializer(graph, np.concatenate(biases), f"{stem}.merged_bias")
    acts = shared_activation(graph, group) if with_activation else None
    ends = [a.output[0] for a in acts] if acts else [n.output[0] for n in group]
    wide = f"{stem}.merged"
    new = [helper.make_node("Conv", [group[0].input[0], w_name, b_name], [wide],
                            name=f"{stem}.merged", **og.attrs(group[0]))]
    if acts:
        new.append(helper.make_node(acts[0].op_type, [wide, *acts[0].input[1:]], [f"{wide}.act"],
                                    name=f"{stem}.merged_{acts[0].op_type}", **og.attrs(acts[0])))
    new.append(split_node(graph, new[-1].output[0], ends, [w.shape[0] for w in weights], opset, stem))
    names = [n.name or n.output[0] for n in group]
    op = acts[0].op_type if acts else None
    og.replace_nodes(graph, group + (acts or []), new)
    cancelled = cancel_split_concat(graph, f"{stem}.split")
    return {"convs": names, "channels": [int(w.shape[0]) for w in weights], "activation": op,
            "split_concat_removed": cancelled}


def shared_activation(graph: Any, group: list[Any]) -> list[Any] | None:
    """Each sibling's activation when all are the same op with the same attributes and are
    each sibling's only consumer; else None."""
    from . import _onnx_graph as og

    users, outputs = og.consumers(graph), og.graph_outputs(graph)
    acts = []
    for node in group:
        readers = users.get(node.output[0], [])
        if len(readers) != 1 or node.output[0] in outputs or readers[0].op_type not in ACTIVATIONS:
            return None
        acts.append(readers[0])
    first = acts[0]
    same = all(a.op_type == first.op_type and a.domain == first.domain and og.attrs(a) == og.attrs(first)
               and list(a.input[1:]) == list(first.input[1:]) for a in acts)
    return acts if same and len({id(a) for a in acts}) == len(acts) else None


def split_node(graph: Any, source: str, outputs: list[str], sizes: list[int], opset: int,
               stem: str) -> Any:
    """Split on the channel axis; sizes as an input from opset 13, an attribute before."""
    import numpy as np
    from onnx import helper

    from . import _onnx_graph as og

    if opset >= 13:
        sizes_name = og.add_initializer(graph, np.asarray(sizes, np.int64), f"{stem}.split_sizes")
        return helper.make_node("Split", [source, sizes_name], outputs, name=f"{stem}.split", axis=1)
    return helper.make_node("Split", [source], outputs, name=f"{stem}.split", axis=1, split=sizes)


def cancel_split_concat(graph: Any, split_name: str) -> bool:
    """Removes Split + Concat when the Concat (channel axis) reads exactly the Split's outputs,
    in order, and nothing else reads them: the wide tensor is already the concatenation."""
    from . import _onnx_graph as og

    split = next(n for n in graph.node if n.name == split_name)
    users, outputs = og.consumers(graph), og.graph_outputs(graph)
    readers = {id(r): r for name in split.output for r in users.get(name, [])}
    if len(readers) != 1 or any(name in outputs for name in split.output):
        return False
    concat = next(iter(readers.values()))
    if concat.op_type != "Concat" or list(concat.input) != list(split.output) or \
            og.attrs(concat).get("axis") != 1:
        return False
    wide = split.input[0]
    if concat.output[0] in outputs:  # keep the graph's output name: rename the producer instead
        producer = next(n for n in graph.node if wide in n.output)
        producer.output[list(producer.output).index(wide)] = concat.output[0]
    else:
        og.rename_input(graph, concat.output[0], wide)
    og.remove_nodes(graph, [split, concat])
    return True
