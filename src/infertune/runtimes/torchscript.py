"""TorchScript: trace, freeze, optimize_for_inference, save, and reload before measuring.

`torch.jit.optimize_for_inference` rewrites a frozen graph for MKL-DNN: it converts the
weights into `prim::ConstantMKLDNNTensor` constants and wraps convolutions in to_mkldnn /
to_dense pairs. TorchScript cannot serialise those constants: the file saves without
complaint and then fails to load ("required keyword attribute 'value' is undefined"; seen
on Darknet19_448 with torch 2.13). So the saved file is loaded back right after saving,
and a file that does not load is a failed result that says why, never a measured number
of a module that exists only in the building process. (The measuring child loads the file
again, in a fresh process, and checks its outputs.)
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Mapping

from ..load.torch_file import EXTRA_FILE
from ..types import ModelHandle
from .base import (ArtifactError, Runtime, Tolerance, first_line, opener, register,
                   set_torch_threads, workdir_for)
from .torch_eager import TorchSession, example_input, is_script_module


def script_module(handle: ModelHandle, input_size: tuple[int, int] | None = None):
    """Traced (or already scripted) and frozen, in eval mode."""
    import torch

    module = handle.obj
    if not is_script_module(module):
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python values
            module = torch.jit.trace(module.eval(), example_input(handle, input_size=input_size))
    return torch.jit.freeze(module.eval())


def mkldnn_constants(module) -> int:
    """How many MKL-DNN constant tensors (which TorchScript cannot save) the graph holds."""
    return sum(1 for n in module.graph.nodes() if n.kind() == "prim::ConstantMKLDNNTensor")


def check_reload(path: Path, module) -> None:
    """Loads the saved file back; raises ArtifactError with the reason when it does not."""
    import torch

    try:
        torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        n = mkldnn_constants(module)
        cause = (f"; optimize_for_inference left {n} prim::ConstantMKLDNNTensor constants, "
                 "which TorchScript cannot serialise") if n else ""
        raise ArtifactError(f"the saved TorchScript file does not load back "
                            f"({first_line(exc)}){cause}") from None


def save_optimized(handle: ModelHandle, out: Path, *, optimize: bool = True,
                   input_size: tuple[int, int] | None = None) -> Path:
    """Writes the frozen (and optimized) TorchScript file with infertune's metadata."""
    import torch

    try:
        module = script_module(handle, input_size)
        if optimize:
            module = torch.jit.optimize_for_inference(module)
    except Exception as exc:
        raise ArtifactError(f"TorchScript trace/freeze/optimize failed: {first_line(exc)}") from None
    spec = handle.input_spec if input_size is None else handle.input_spec.with_hw(*input_size)
    extra = {EXTRA_FILE: json.dumps({"input_shape": list(spec.chw), "frozen": True,
                                     "optimize_for_inference": optimize})}
    torch.jit.save(module, str(out), _extra_files=extra)
    check_reload(out, module)
    return out


class TorchScriptRuntime(Runtime):
    name = "torchscript"
    accepts = ("torch",)
    requires = ("torch",)
    install = "pip install torch"
    # Freezing folds BatchNorm into the convolution weights (w' = w*g/sqrt(v+eps)): the
    # products are rounded differently from conv-then-BN, ~1e-6 relative per layer.
    tolerance = Tolerance(1e-4, "frozen graph: BatchNorm folded into the convolutions changes "
                                "rounding (~1e-6 relative per layer), nothing else")
    description = "TorchScript: trace + freeze + optimize_for_inference, reloaded from disk"

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        set_torch_threads(threads)
        out = workdir_for(workdir, self.name) / "model.pt"
        return save_optimized(handle, out, optimize=True, input_size=input_size)


register(TorchScriptRuntime())


@opener("torchscript", preload=("numpy", "torch"))
def open_torchscript(artifact: str, options: Mapping[str, Any]) -> TorchSession:
    """Loads the saved TorchScript file (any failure to load is the result's reason)."""
    import torch

    set_torch_threads(options.get("threads"))
    extra = {EXTRA_FILE: ""}
    module = torch.jit.load(artifact, map_location="cpu", _extra_files=extra)
    info = json.loads(extra[EXTRA_FILE]) if extra[EXTRA_FILE] else {}
    return TorchSession(module.eval(), options, {
        "artifact_kind": "TorchScript", "frozen": info.get("frozen"),
        "optimize_for_inference": info.get("optimize_for_inference")})
