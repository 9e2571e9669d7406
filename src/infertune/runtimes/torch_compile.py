"""torch.compile with the inductor backend, weights frozen: what PyTorch offers for CPU serving.

The artifact is the eager runtime's ExportedProgram (torch_eager.py says why); compiling
happens where it would happen in a deployment: in the serving process, on the first call at
each input shape. So the session times that first call per shape and reports it as
`compile_ms` (in `session_info`, lifted into the result), apart from the steady-state
latency; the harness's cold start (open + first call) therefore *includes* the compile,
which is what a fresh serving process pays.

Settings, and why:
- `freezing=True`: weights become constants, so inductor folds BatchNorm into convolutions
  and picks weight layouts ahead of time (55 vs 69 ms on Darknet19_448 here, one run).
- `dynamic=False`: every measurement runs one batch size, and a shape-specialised kernel is
  what a fixed-batch server would run.
- a fresh inductor cache folder per process (unless the option `fresh_cache` is false):
  otherwise the second round would reuse the first's compiled kernels and report a compile
  time, and a cold start, that a new machine never sees.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from .base import (Incompatible, Loader, Runtime, Tolerance, cxx_compiler, opener, register,
                   set_torch_threads)
from .layer_time import profiler_rows
from .torch_eager import TorchSession, is_script_module, load_module, program_artifact


class TorchCompile(Runtime):
    name = "compile"
    accepts = ("torch",)
    requires = ("torch",)
    install = "pip install torch"
    takes_cast_torch = True  # a bf16/fp16 module runs as it is, float32 I/O
    # Inductor fuses ops into generated C++ loops with its own vectorised reductions and,
    # frozen, folds BatchNorm: the float summation order differs from eager's kernels.
    tolerance = Tolerance(1e-3, "generated C++ kernels with their own summation order, "
                                "BatchNorm folded: FP32 rounding differences only")
    description = "torch.compile (inductor, freezing) on the torch.export program"
    artifact_files = ".pt2"
    artifact_note = "torch.export program, compiled by inductor when opened"
    loader = Loader("torch", (
        "import torch\n"
        "import torchao  # noqa: F401  (registers the int8 ops an INT8 program may use)\n"
        "module = torch.compile(torch.export.load(MODEL).module())\n"
        "predict = lambda x: module(torch.from_numpy(x)).detach().numpy()\n"))
    prior_speedups = {"fp32": 1.7, "int8": 6.0, "bf16": 2.0}
    family = "torch"
    rank = 30
    times_layers = True

    def hardware_available(self) -> tuple[bool, str | None]:
        if cxx_compiler() is None:
            return False, "torch.compile's CPU backend needs a C++ compiler (g++ or clang++)"
        return True, None

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        if is_script_module(handle.obj):
            raise Incompatible("torch.compile needs an nn.Module; this model is TorchScript")
        set_torch_threads(threads)
        return program_artifact(handle, workdir, input_size)

    def options(self, batch: int | None) -> dict[str, Any]:
        return {"freezing": True, "fresh_cache": True}

    def time_layers(self, artifact, x, threads, runs):
        return profiler_rows(self, artifact, x, threads, runs)  # compiled: no modules left


register(TorchCompile())


class CompiledSession(TorchSession):
    """A compiled module; the first call at each input shape is timed as its compile."""

    def __init__(self, module, options: Mapping[str, Any], info: dict[str, Any],
                 cache_dir: str | None):
        super().__init__(module, options, info)
        self.compile_ms: dict[str, float] = {}
        self._cache_dir = cache_dir

    def run(self, x):
        key = "x".join(str(d) for d in x.shape)
        if key in self.compile_ms:
            return super().run(x)
        t0 = time.perf_counter_ns()
        out = super().run(x)
        self.compile_ms[key] = (time.perf_counter_ns() - t0) / 1e6
        return out

    def close(self) -> None:
        super().close()
        if self._cache_dir:
            shutil.rmtree(self._cache_dir, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        first = next(iter(self.compile_ms.values()), None)
        return {**super().describe(), "compile_ms": first,
                "compile_ms_by_shape": dict(self.compile_ms),
                "compile_note": "first call at a shape: compile plus one inference"}


@opener("compile", preload=("numpy", "torch", "torch._inductor.config"))
def open_compile(artifact: str, options: Mapping[str, Any]) -> CompiledSession:
    """Loads the program and wraps it in torch.compile (compiled lazily at the first call)."""
    import torch
    import torch._inductor.config as inductor_config

    set_torch_threads(options.get("threads"))
    cache = None
    if options.get("fresh_cache", True):
        cache = tempfile.mkdtemp(prefix="infertune-inductor-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # read by inductor at compile time
    inductor_config.freezing = bool(options.get("freezing", True))
    mode = options.get("mode")  # None = inductor's default; "max-autotune" is slower to build
    module = load_module(artifact)
    int8 = int8_lowering(module)
    compiled = torch.compile(module, backend="inductor", mode=mode, dynamic=False)
    info = {"artifact_kind": "torch.export program", "backend": "inductor",
            "mode": mode or "default",
            "freezing": inductor_config.freezing, "inductor_cache": "fresh" if cache else "shared"}
    if int8:
        info["int8_lowering"] = int8
    return CompiledSession(compiled, options, info, cache)


def int8_lowering(module) -> str | None:
    """Registers the inductor passes a PT2E-quantized program (int8_static engine=torch)
    needs; None for a float program.

    They lower quantize/dequantize + conv patterns to oneDNN int8 kernels (with freezing).
    torch 2.13 moved them to torchao, which registers them on import; without them the
    program runs dequantized in float: 460 vs 45 ms on Darknet19_448 here (one run each).
    """
    graph = getattr(module, "graph", None)
    if graph is None or not any("quantized_decomposed" in str(n.target) for n in graph.nodes):
        return None
    import logging

    logging.getLogger("torchao").setLevel(logging.ERROR)  # its CUDA extensions: not here
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401
    except ImportError:
        return "torchao not installed: the int8 program runs dequantized, in float"
    return "torchao x86 inductor int8 passes"
