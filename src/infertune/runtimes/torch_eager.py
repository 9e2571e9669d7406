"""PyTorch eager, FP32, in inference mode: the baseline every other runtime is compared with.

The artifact is an ExportedProgram saved with `torch.export.save` (`model.pt2`), exported
with a dynamic batch dimension. Why this and not the alternatives:
- `torch.save(module)` pickles the class and needs arbitrary code to load (our loaders refuse
  such pickles, rightly); a state dict plus "how to rebuild it" would depend on the source
  (zoo name, cfg file, user code) still being there and importable in the child.
- The exported program is self-contained, loads without the model's Python code, and runs
  op by op with the same ATen kernels as the module: on Darknet19_448 its outputs are
  bit-identical to the module's and its latency is the same (101 vs 103 ms, one run here).
`torch.export.load` may fall back to unpickling; that is acceptable here only because the
file is one infertune has just written into its own private work folder, never user input.

A TorchScript source (a ScriptModule cannot be exported) is saved with `torch.jit.save`
instead (`model.ts`), unfrozen, and run as TorchScript's interpreter runs it.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Mapping

from ..types import ModelHandle
from .base import (ArtifactError, Loader, Runtime, Tolerance, first_line, opener, register,
                   set_torch_threads, workdir_for)
from .layer_time import OTHER_ROW, WARMUP_RUNS, profiler_rows, rows_from_totals

# Exporting at batch 1 would let torch.export specialise the batch to the constant 1
# (0/1 specialisation); an example batch of 2 keeps it symbolic.
_EXAMPLE_BATCH = 2


def is_script_module(module: Any) -> bool:
    import torch

    return isinstance(module, torch.jit.ScriptModule)


def example_input(handle: ModelHandle, batch: int = _EXAMPLE_BATCH,
                  input_size: tuple[int, int] | None = None):
    import torch

    spec = handle.input_spec if input_size is None else handle.input_spec.with_hw(*input_size)
    generator = torch.Generator().manual_seed(0)
    return torch.randn((batch, *spec.chw), generator=generator)


def export_program(handle: ModelHandle, out: Path,
                   input_size: tuple[int, int] | None = None) -> Path:
    """Saves `handle` as an ExportedProgram with a dynamic batch dimension at `out`."""
    import torch

    x = example_input(handle, input_size=input_size)
    batch = torch.export.Dim("batch", min=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(handle.obj, (x,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(out))
    except Exception as exc:
        raise ArtifactError(f"torch.export cannot export this model with a dynamic batch: "
                            f"{first_line(exc)}") from None
    return out


def program_artifact(handle: ModelHandle, workdir: str | Path,
                     input_size: tuple[int, int] | None = None) -> Path:
    """The shared eager artifact (torch and compile start from the same file)."""
    folder = workdir_for(workdir, "torch")
    if is_script_module(handle.obj):
        import torch

        out = folder / "model.ts"
        if not out.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit is deprecated in torch 2.13
                torch.jit.save(handle.obj, str(out))
        return out
    out = folder / "model.pt2"
    return out if out.exists() else export_program(handle, out, input_size)


def load_module(artifact: str):
    """The runnable module of a .pt2 (ExportedProgram) or .ts (TorchScript) artifact."""
    import torch

    if artifact.endswith(".ts"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in torch 2.13
            return torch.jit.load(artifact, map_location="cpu").eval()
    return load_program(artifact).module()


def load_program(artifact: str):
    """The ExportedProgram of a .pt2 artifact."""
    import torch

    try:
        return torch.export.load(artifact)
    except RuntimeError:
        # A PT2E-quantized program (int8_static engine=torch) is made of quantized_decomposed
        # ops, registered only by this import (18 ms: not paid by float programs).
        import torch.ao.quantization.fx._decomposed  # noqa: F401

        return torch.export.load(artifact)


class TorchEager(Runtime):
    name = "torch"
    accepts = ("torch",)
    requires = ("torch",)
    install = "pip install torch"
    takes_cast_torch = True  # a bf16/fp16 module runs as it is, float32 I/O
    # Same ATen kernels on the same inputs as the reference module: differences, if any, are
    # in the last bits (a changed summation order in a fused op).
    tolerance = Tolerance(1e-5, "the same ATen kernels as the reference module, op by op: "
                                "only last-bit rounding may differ")
    description = "PyTorch eager FP32 (inference mode), from a torch.export program"
    artifact_files = ".pt2"
    artifact_note = "torch.export program (.ts for a TorchScript source)"
    loader = Loader("torch", (
        "import torch\n"
        "module = torch.export.load(MODEL).module()\n"
        "predict = lambda x: module(torch.from_numpy(x)).detach().numpy()\n"))
    prior_speedups = {"fp32": 1.0}
    family = "torch"
    rank = 10
    times_layers = True

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        set_torch_threads(threads)
        return program_artifact(handle, workdir, input_size)

    def time_layers(self, artifact, x, threads, runs):
        if artifact.endswith(".pt2"):
            return leaf_module_rows(artifact, x, threads, runs), LAYER_METHOD
        return profiler_rows(self, artifact, x, threads, runs)  # a .ts: no modules left


register(TorchEager())


class TorchSession:
    """A torch module run on numpy batches under inference_mode; outputs as numpy arrays."""

    def __init__(self, module, options: Mapping[str, Any], info: dict[str, Any]):
        import torch

        from ..tensors import tensors_in

        self._torch, self._tensors_in = torch, tensors_in
        self._module = module
        self.options = dict(options)
        self.info = info

    def run(self, x):
        with self._torch.inference_mode():
            out = self._module(self._torch.from_numpy(x))
        return [t.numpy() for t in self._tensors_in(out)]

    def close(self) -> None:
        self._module = None

    def describe(self) -> dict[str, Any]:
        torch = self._torch
        return {**self.info, "torch": torch.__version__,
                "intra_op_threads": torch.get_num_threads(),
                "precision": module_precision(self._module) if self._module is not None
                else None}


_SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "float64": "fp64"}


def module_precision(module) -> dict[str, Any]:
    """What the loaded module computes in, for the model card: its floating weights' dtypes
    (a bf16/fp16 candidate is a module cast whole, behind float32 I/O: _torch_cast.py) and,
    for bf16/fp16, whether this CPU has the instructions (else torch emulates them)."""
    from collections import Counter

    tensors = list(module.parameters()) + list(module.buffers()) + _graph_constants(module)
    counts = Counter(_SHORT.get(str(t.dtype).removeprefix("torch."), str(t.dtype))
                     for t in tensors if t.is_floating_point())
    ran = counts.most_common(1)[0][0] if counts else "unknown"
    summary = f"torch ran the module with {ran} weights"
    if counts and len(counts) > 1:
        summary += " (" + ", ".join(f"{n} tensors {p}" for p, n in counts.most_common()) + ")"
    if ran in ("bf16", "fp16"):
        from ..passes._lowp import native_support

        summary += f", float32 inputs and outputs; {native_support(ran)['note']}"
    return {"ran": ran, "weights_by_precision": dict(counts), "summary": summary}


@opener("torch", preload=("numpy", "torch"))
def open_torch(artifact: str, options: Mapping[str, Any]) -> TorchSession:
    """Loads the eager artifact and runs it op by op."""
    set_torch_threads(options.get("threads"))
    kind = "TorchScript (unfrozen)" if artifact.endswith(".ts") else "torch.export program"
    return TorchSession(load_module(artifact), options, {"artifact_kind": kind, "mode": "eager"})


def _graph_constants(module) -> list:
    """A frozen TorchScript module's weights: tensor constants of its graph (no parameters)."""
    import torch

    graph = getattr(module, "graph", None)
    if not isinstance(module, torch.jit.ScriptModule) or graph is None:
        return []
    values = (node.output().toIValue() for node in graph.findAllNodes("prim::Constant"))
    return [v for v in values if isinstance(v, torch.Tensor)]


# ---------------------------------------------------------------------------- layer time
LAYER_METHOD = ("forward pre/post hooks per leaf module of the unflattened torch.export program, "
                "time.perf_counter_ns; approximate (hook overhead, a few µs per module, is in "
                f"the {OTHER_ROW!r} row with ops outside any leaf module)")


def _module_types(program) -> dict[str, str]:
    """Module path -> class name, from the exported graph's nn_module_stack metadata."""
    types: dict[str, str] = {}
    for node in program.graph.nodes:
        for path, type_name in (node.meta.get("nn_module_stack") or {}).values():
            types.setdefault(str(path), str(type_name).rsplit(".", 1)[-1])
    return types


class _LeafTimer:
    """Forward pre/post hooks that add each leaf module's wall time (ns) to `totals`."""

    def __init__(self, module, sync):
        self.totals: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self._start: dict[str, int] = {}
        self._sync = sync
        self.handles = []
        for name, child in module.named_modules():
            if name and not any(True for _ in child.children()):
                self.totals[name] = self.calls[name] = 0
                self.handles.append(child.register_forward_pre_hook(self._pre(name)))
                self.handles.append(child.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(module, args):
            self._sync()
            self._start[name] = time.perf_counter_ns()
        return hook

    def _post(self, name):
        def hook(module, args, output):
            self._sync()
            self.totals[name] += time.perf_counter_ns() - self._start[name]
            self.calls[name] += 1
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def leaf_module_rows(artifact: str, x, threads: int | None, runs: int) -> list[dict[str, Any]]:
    """Per-leaf-module rows of a .pt2 program, timed by hooks, plus the OTHER_ROW rest."""
    import torch

    from ..measure.limits import torch_threads

    program = load_program(artifact)
    module = torch.export.unflatten(program)
    sync = torch.cuda.synchronize if torch.cuda.is_available() and torch.cuda.is_initialized() \
        else (lambda: None)
    xt = torch.from_numpy(x)
    with torch_threads(threads or torch.get_num_threads()), torch.inference_mode():
        for _ in range(WARMUP_RUNS):
            module(xt)
        timer = _LeafTimer(module, sync)
        start = time.perf_counter_ns()
        for _ in range(runs):
            module(xt)
        sync()
        whole_ns = time.perf_counter_ns() - start
        timer.remove()
    # A leaf that never ran (an Identity the export left without ops) is no layer to time.
    totals = {name: ns / 1e6 for name, ns in timer.totals.items() if timer.calls[name]}
    # Ops outside leaf modules, the hooks' own cost and the run loop: the rest of the time.
    totals[OTHER_ROW] = max(0.0, whole_ns / 1e6 - sum(totals.values()))
    return rows_from_totals(totals, _module_types(program), runs)
