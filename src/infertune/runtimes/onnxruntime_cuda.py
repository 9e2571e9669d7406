"""ONNX Runtime on the CUDA execution provider ("onnxruntime-cuda"): the same ONNX artifact as
the CPU "onnxruntime" runtime, run by the onnxruntime-gpu wheel on an NVIDIA GPU.

A runtime of its own, so that a GPU figure is never filed under the CPU runtime's name. The
session asks for exactly [CUDA, CPU] (ORT places on the CPU provider only the nodes CUDA has
no kernel for) and fails, naming the providers it got, when ORT did not take the CUDA provider
(a missing CUDA/cuDNN library makes ORT fall back to the CPU silently). TF32 is off
(`use_tf32=0`): an FP32 runtime is compared as FP32. `run` returns host arrays, so ORT has
synchronised the device before it returns (the Session contract).

onnxruntime-gpu replaces the onnxruntime wheel (both install the `onnxruntime` module): on a
GPU host, `pip uninstall onnxruntime && pip install 'onnxruntime-gpu[cuda,cudnn]'`. The
[cuda,cudnn] extras bring CUDA and cuDNN as pip packages, which `onnxruntime.preload_dlls()`
loads (ORT >= 1.21), so no system CUDA install is needed.

The ORT GPU runtimes share this module's `OrtGpuRuntime` and `OrtGpuSession`;
onnxruntime_tensorrt.py is the TensorRT provider's.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any, Mapping

from infertune.errors import RuntimeUnavailable
from infertune.runtimes import _cuda
from infertune.runtimes.base import Runtime, Tolerance, onnx_artifact, opener, register
from infertune.runtimes.onnxruntime import OrtSession

ORT_GPU = "onnxruntime-gpu"
ORT_GPU_INSTALL = "pip install 'onnxruntime-gpu[cuda,cudnn]' in place of onnxruntime"


def ort_gpu_wheel() -> bool:
    """Whether the onnxruntime-gpu distribution is installed (metadata only)."""
    try:
        importlib.metadata.version(ORT_GPU)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


class OrtGpuRuntime(Runtime):
    """An ORT execution provider on the GPU: what the CUDA and TensorRT ones share."""

    accepts = ("torch", "onnx")
    requires = ("onnxruntime", "onnx")
    install = ORT_GPU_INSTALL
    artifact_files = ".onnx"
    artifact_note = "ONNX, opset >= 17, dynamic batch (run on the GPU)"
    needs_gpu = True
    provider = ""
    extra_packages: tuple[tuple[str, str], ...] = ()

    def available(self) -> tuple[bool, str | None]:
        why = _cuda.gpu_missing(self.extra_packages)
        if not ort_gpu_wheel():
            why = "; ".join(w for w in (why, f"{ORT_GPU} not installed") if w)
        return (False, f"{why} ({self.install})") if why else (True, None)

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        return onnx_artifact(handle, workdir, input_size)

    def options(self, batch: int | None) -> dict[str, Any]:
        return {"device": "cuda"}  # the measurement reads the GPU's energy counter


class OnnxRuntimeCuda(OrtGpuRuntime):
    name = "onnxruntime-cuda"
    provider = "CUDAExecutionProvider"
    tolerance = Tolerance(1e-3, "GPU FP32 kernels (cuDNN/cuBLAS), TF32 disabled: rounding "
                                "differences only")
    description = "ONNX Runtime, CUDA execution provider, FP32 with TF32 off (NVIDIA GPU only)"
    prior_speedups = {"fp32": 6.0}
    rank = 62


register(OnnxRuntimeCuda())


class OrtGpuSession(OrtSession):
    """An OrtSession on `providers`, refusing to run when ORT did not take the first one."""

    def __init__(self, artifact: str, options: Mapping[str, Any], providers: list[Any]):
        wanted = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        import onnxruntime as ort

        preload = getattr(ort, "preload_dlls", None)
        if callable(preload):  # CUDA/cuDNN from the nvidia-* pip packages, where installed
            preload()
        if wanted not in ort.get_available_providers():
            raise RuntimeUnavailable(f"this onnxruntime build has no {wanted} (install "
                                     f"{ORT_GPU}; it has {ort.get_available_providers()})")
        super().__init__(artifact, options, providers=providers)
        got = self._sess.get_providers()
        if not got or got[0] != wanted:
            raise RuntimeUnavailable(f"ONNX Runtime did not take {wanted} (it fell back to "
                                     f"{got}; see its log for the library it could not load)")

    def describe(self) -> dict[str, Any]:
        # GPU 0 is the one the result's fingerprint names first (its "gpu" entry).
        return {**super().describe(), "device": "cuda:0"}


def cuda_provider() -> tuple[str, dict[str, str]]:
    return ("CUDAExecutionProvider", {"device_id": "0", "use_tf32": "0"})


@opener("onnxruntime-cuda", preload=("numpy", "onnxruntime"))
def open_onnxruntime_cuda(artifact: str, options: Mapping[str, Any]) -> OrtGpuSession:
    """Opens an .onnx file with ORT on the CUDA provider (CPU only for nodes CUDA lacks)."""
    return OrtGpuSession(artifact, options, [cuda_provider(), "CPUExecutionProvider"])
