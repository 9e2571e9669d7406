"""ONNX Runtime on the TensorRT execution provider ("onnxruntime-tensorrt"): the same ONNX
artifact, which ORT hands to TensorRT (subgraphs TensorRT cannot take run on CUDA, then CPU).

What it sets, and why:
- providers exactly [TensorRT, CUDA, CPU], and the session fails, naming what it got, unless
  ORT took the TensorRT provider first (ORT falls back silently when it cannot load
  libnvinfer: a CUDA figure would otherwise be filed under TensorRT's name);
- FP32: `trt_fp16_enable=0`, and TF32 off through NVIDIA_TF32_OVERRIDE=0, set in the measuring
  child before the provider starts (the provider has no TF32 option; TensorRT and the CUDA
  libraries honour the variable);
- one optimisation profile from the ONNX's real batch dimension (the native TensorRT
  runtime's `batch_profile`: a static batch exactly, else 1/8/64), so that a new batch size
  does not rebuild the engine inside a timed call;
- the engine and timing caches next to the artifact, so that the measuring children after the
  first one load the engine instead of building it (the first build is the cold start).

The provider needs TensorRT's libraries: with the tensorrt wheels they live in the
`tensorrt_libs` package, which is not on the loader's path; they are loaded here (RTLD_GLOBAL)
before the session is made, so that ORT's dlopen finds them. ORT's TensorRT provider is built
against one TensorRT major version (see ORT's requirements table); a mismatch is a session
that fails with the providers ORT took.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path
from typing import Any, Mapping

from infertune.runtimes.base import Tolerance, opener, register
from infertune.runtimes.onnxruntime_cuda import (ORT_GPU_INSTALL, OrtGpuRuntime, OrtGpuSession,
                                                 cuda_provider)
from infertune.runtimes.tensorrt import batch_profile

TRT_LIBS = ("libnvinfer.so", "libnvinfer_plugin.so", "libnvonnxparser.so")


class OnnxRuntimeTensorRt(OrtGpuRuntime):
    name = "onnxruntime-tensorrt"
    provider = "TensorrtExecutionProvider"
    extra_packages = (("tensorrt", "tensorrt"),)
    install = f"{ORT_GPU_INSTALL}; pip install tensorrt-cu12"
    tolerance = Tolerance(1e-3, "TensorRT FP32 kernels through ORT, TF32 disabled "
                                "(NVIDIA_TF32_OVERRIDE=0): rounding differences only")
    description = "ONNX Runtime, TensorRT execution provider, FP32 (NVIDIA GPU only)"
    prior_speedups = {"fp32": 9.0}
    rank = 64


register(OnnxRuntimeTensorRt())


def profile_options(onnx_path: str) -> dict[str, str]:
    """The provider's explicit profile options for the ONNX's image input (empty when its
    per-sample dims are symbolic: ORT then profiles the shapes it sees)."""
    import onnx

    model = onnx.load(onnx_path, load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    image = next(i for i in model.graph.input if i.name not in inits)
    dims = image.type.tensor_type.shape.dim[1:]
    if len(dims) != 3 or not all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
        return {}
    profile = batch_profile(model, tuple(d.dim_value for d in dims))  # type: ignore[arg-type]
    lo, opt, hi = ("x".join(str(v) for v in shape) for shape in profile.shapes())
    return {"trt_profile_min_shapes": f"{profile.input}:{lo}",
            "trt_profile_opt_shapes": f"{profile.input}:{opt}",
            "trt_profile_max_shapes": f"{profile.input}:{hi}"}


def tensorrt_provider(artifact: str) -> tuple[str, dict[str, str]]:
    cache = Path(artifact).resolve().parent / "ort_trt_cache"
    return ("TensorrtExecutionProvider",
            {"device_id": "0", "trt_fp16_enable": "0", "trt_int8_enable": "0",
             "trt_engine_cache_enable": "1", "trt_engine_cache_path": str(cache),
             "trt_timing_cache_enable": "1", "trt_timing_cache_path": str(cache),
             **profile_options(artifact)})


def preload_tensorrt_libs() -> list[str]:
    """TensorRT's libraries from the tensorrt_libs package, loaded globally (see the module
    docstring); the names of those loaded (none where TensorRT is a system install)."""
    spec = importlib.util.find_spec("tensorrt_libs")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(list(spec.submodule_search_locations)[0])
    loaded = []
    for stem in TRT_LIBS:
        for lib in sorted(folder.glob(stem + ".*")):
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            loaded.append(lib.name)
            break
    return loaded


@opener("onnxruntime-tensorrt", preload=("numpy", "onnxruntime", "onnx"))
def open_onnxruntime_tensorrt(artifact: str, options: Mapping[str, Any]) -> OrtGpuSession:
    """Opens an .onnx file with ORT on the TensorRT provider (CUDA, then CPU, for the rest)."""
    os.environ["NVIDIA_TF32_OVERRIDE"] = "0"  # before any CUDA library starts in this child
    preload_tensorrt_libs()
    cache = Path(artifact).resolve().parent / "ort_trt_cache"
    cache.mkdir(exist_ok=True)
    return OrtGpuSession(artifact, options,
                         [tensorrt_provider(artifact), cuda_provider(), "CPUExecutionProvider"])
