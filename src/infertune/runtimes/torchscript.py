"""TorchScript: trace, freeze, optimize_for_inference, save, and reload before measuring.

`torch.jit.optimize_for_inference` rewrites a frozen graph for MKL-DNN: it converts the
weights into `prim::ConstantMKLDNNTensor` constants and wraps convolutions in to_mkldnn /
to_dense pairs. TorchScript cannot serialise those constants: the file saves without
complaint and then fails to load ("required keyword attribute 'value' is undefined"; seen
on Darknet19_448 with torch 2.13). So the saved file is loaded back right after saving,
and a file that does not load is never measured as if it were the optimized module.

With torch 2.13 this happens to every convolutional network (optimize_for_inference turns
every convolution weight into such a constant), so a runtime that stopped there would be a
permanent "failed". Instead the build falls back to the frozen module *without*
optimize_for_inference (the variant a deployment would actually ship), reloads that too, and
says so: the artifact records `optimize_for_inference: false` and the reason, which the
session reports and bench turns into a warning on the row. Only when the fallback does not
load back either is the result failed, with the reason. (The measuring child loads the file
again, in a fresh process, and checks its outputs against the float model.)
"""
from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any, Mapping

from ..load.torch_file import EXTRA_FILE
from ..types import ModelHandle
from .base import (ArtifactError, Loader, Runtime, Tolerance, TritonBackend, first_line, opener,
                   register, set_torch_threads, workdir_for)
from .layer_time import profiler_rows
from .torch_eager import TorchSession, example_input, is_script_module


@contextlib.contextmanager
def quiet():
    """torch 2.13 deprecates every torch.jit entry point with a warning; TorchScript is
    measured because deployments still ship it, so the warnings are expected noise here
    (as are the tracer's warnings about Python values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def script_module(handle: ModelHandle, input_size: tuple[int, int] | None = None):
    """Traced (or already scripted) and frozen, in eval mode."""
    import torch

    module = handle.obj
    with quiet():
        if not is_script_module(module):
            with torch.no_grad():
                x = example_input(handle, input_size=input_size)
                module = torch.jit.trace(module.eval(), x)
        return torch.jit.freeze(module.eval())


def mkldnn_constants(module) -> int:
    """How many MKL-DNN constant tensors (which TorchScript cannot save) the graph holds."""
    return sum(1 for n in module.graph.nodes() if n.kind() == "prim::ConstantMKLDNNTensor")


def check_reload(path: Path, module) -> None:
    """Loads the saved file back; raises ArtifactError with the reason when it does not."""
    import torch

    try:
        with quiet():
            torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        n = mkldnn_constants(module)
        cause = (f"; optimize_for_inference left {n} prim::ConstantMKLDNNTensor constants, "
                 "which TorchScript cannot serialise") if n else ""
        raise ArtifactError(f"the saved TorchScript file does not load back "
                            f"({first_line(exc)}){cause}") from None


def save_module(module, out: Path, meta: dict[str, Any]) -> Path:
    """Saves with infertune's metadata (input shape, how it was built) and reloads it."""
    import torch

    with quiet():
        torch.jit.save(module, str(out), _extra_files={EXTRA_FILE: json.dumps(meta)})
    check_reload(out, module)
    return out


def save_optimized(handle: ModelHandle, out: Path, *, input_size: tuple[int, int] | None = None,
                   fallback: bool = True) -> Path:
    """Writes trace + freeze + optimize_for_inference; the frozen module if that does not
    load back and `fallback` is set (module docstring)."""
    import torch

    spec = handle.input_spec if input_size is None else handle.input_spec.with_hw(*input_size)
    meta = {"input_shape": list(spec.chw), "frozen": True, "optimize_for_inference": True}
    try:
        with quiet():
            optimized = torch.jit.optimize_for_inference(script_module(handle, input_size))
    except Exception as exc:
        raise ArtifactError(f"TorchScript trace/freeze/optimize failed: "
                            f"{first_line(exc)}") from None
    try:
        return save_module(optimized, out, meta)
    except ArtifactError as exc:
        if not fallback:
            raise
        why = f"optimize_for_inference's file does not load back: {exc}"
    # optimize_for_inference rewrote the frozen graph in place: trace and freeze again.
    meta.update(optimize_for_inference=False, fallback=f"{why}; measured the frozen module "
                                                       "without optimize_for_inference")
    return save_module(script_module(handle, input_size), out, meta)


class TorchScriptRuntime(Runtime):
    name = "torchscript"
    accepts = ("torch",)
    requires = ("torch",)
    install = "pip install torch"
    takes_cast_torch = True  # a bf16/fp16 module runs as it is, float32 I/O
    # Freezing folds BatchNorm into the convolution weights (w' = w*g/sqrt(v+eps)): the
    # products are rounded differently from conv-then-BN, ~1e-6 relative per layer.
    tolerance = Tolerance(1e-4, "frozen graph: BatchNorm folded into the convolutions changes "
                                "rounding (~1e-6 relative per layer), nothing else")
    description = ("TorchScript: trace + freeze + optimize_for_inference (frozen only when "
                   "that file does not load back), reloaded from disk")
    artifact_files = ".pt"
    artifact_note = "traced and frozen TorchScript"
    loader = Loader("torch", (
        "import torch\n"
        "module = torch.jit.load(MODEL).eval()\n"
        "predict = lambda x: module(torch.from_numpy(x)).detach().numpy()\n"))
    triton = TritonBackend("platform", "pytorch_libtorch", "model.pt")
    prior_speedups = {"fp32": 1.0}
    family = "torch"
    rank = 20
    times_layers = True

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        set_torch_threads(threads)
        out = workdir_for(workdir, self.name) / "model.pt"
        return save_optimized(handle, out, input_size=input_size)

    def time_layers(self, artifact, x, threads, runs):
        return profiler_rows(self, artifact, x, threads, runs)  # frozen: no modules left


register(TorchScriptRuntime())


@opener("torchscript", preload=("numpy", "torch"))
def open_torchscript(artifact: str, options: Mapping[str, Any]) -> TorchSession:
    """Loads the saved TorchScript file (any failure to load is the result's reason)."""
    import torch

    set_torch_threads(options.get("threads"))
    extra = {EXTRA_FILE: ""}
    with quiet():
        module = torch.jit.load(artifact, map_location="cpu", _extra_files=extra)
    info = json.loads(extra[EXTRA_FILE]) if extra[EXTRA_FILE] else {}
    return TorchSession(module.eval(), options, {
        "artifact_kind": "TorchScript", "frozen": info.get("frozen"),
        "optimize_for_inference": info.get("optimize_for_inference"),
        "fallback": info.get("fallback")})
