"""`cleanup`: dead outputs and nodes removed, constants folded (ONNX; exact).

1. Outputs: with `outputs=a+b` only those graph outputs are kept (a detector's auxiliary
   heads, debugging outputs); then every node whose results reach no output is removed, and
   so is every initializer no node reads.
2. Constants: ONNX Runtime's graph optimizer at the BASIC level, saved with
   `optimized_model_filepath`. BASIC is ORT's set of semantics-preserving, provider-
   independent rewrites (constant folding, Identity/Dropout elimination, redundant Cast and
   Reshape removal, Conv+BatchNormalization / Conv+Mul / Conv+Add folding): its result uses
   standard ONNX ops only, so every runtime can run it, unlike the EXTENDED level that
   `fuse_activation` uses. ORT is the engine because it is maintained alongside the op set
   and already knows which rewrites are exact; onnx itself ships no constant folder.

A torch model is exported to ONNX first by the pipeline (the exporter folds constants too;
what remains for this pass is mostly the Identity nodes it leaves).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass, workfile


@dataclass(frozen=True)
class CleanupConfig:
    """Options of cleanup.

    Attributes:
        outputs: graph outputs to keep (names joined with '+' on the command line); empty
            keeps them all.
        fold_constants: run ONNX Runtime's BASIC optimizer (constant folding and friends).
    """

    outputs: tuple[str, ...] = ()
    fold_constants: bool = True


@register_pass("cleanup", exact=True, config=CleanupConfig, accepts=("onnx",),
               description="remove dead outputs and nodes, fold constants (ONNX Runtime BASIC "
                           "level; standard ONNX ops only, exact)")
def apply(model: ModelHandle, config: CleanupConfig, ctx: PassContext) -> PassResult:
    """Cleans `model`'s graph; the input file is untouched."""
    from . import _onnx_graph as og

    proto = og.load(model)
    before = og.op_counts(proto)
    dropped_outputs = keep_outputs(proto.graph, config.outputs)
    dead = og.remove_dead_nodes(proto.graph)
    path = og.save(proto, ctx, model, "cleanup")
    if config.fold_constants:
        path = _ort_basic(path, ctx, model)
        proto = og.load(og.derived(model, path))
    after = og.op_counts(proto)
    removed = {op: n - after.get(op, 0) for op, n in before.items() if n > after.get(op, 0)}
    details = {"summary": f"nodes {sum(before.values())} → {sum(after.values())}"
                          + (f", outputs dropped: {', '.join(dropped_outputs)}" if dropped_outputs else ""),
               "nodes_before": sum(before.values()), "nodes_after": sum(after.values()),
               "dead_nodes_removed": dead, "outputs_dropped": dropped_outputs,
               "removed_by_op": removed, "ops_before": before, "ops_after": after}
    if sum(after.values()) == sum(before.values()) and not dropped_outputs and not removed:
        path.unlink()
        return PassResult(model, False, "nothing to clean up: no dead nodes, nothing to fold",
                          details)
    outputs = [o.name for o in proto.graph.output]
    return PassResult(og.derived(model, path, outputs=outputs), True, None, details)


def keep_outputs(graph: Any, names: tuple[str, ...]) -> list[str]:
    """Removes graph outputs not in `names` (all kept when empty); returns the removed ones.

    Raises:
        ConfigError: a name that is not an output of the graph.
    """
    if not names:
        return []
    present = [o.name for o in graph.output]
    unknown = [n for n in names if n not in present]
    if unknown:
        raise ConfigError(f"pass cleanup: {', '.join(unknown)} is not an output of the model "
                          f"(outputs: {', '.join(present)})")
    dropped = [o for o in graph.output if o.name not in names]
    for out in dropped:
        graph.output.remove(out)
    return [o.name for o in dropped]


def _ort_basic(path: Path, ctx: PassContext, model: ModelHandle) -> Path:
    """ORT's BASIC optimizer on `path`; the result with unused opset imports dropped."""
    from . import _onnx_graph as og

    raw = workfile(ctx, "cleanup.ort", ".onnx")
    og.ort_optimize(path, raw, "basic")
    proto = og.load(og.derived(model, raw))
    raw.unlink()
    path.unlink()
    og.drop_unused_domains(proto)
    return og.save(proto, ctx, model, "cleanup")
