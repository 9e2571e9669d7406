"""ONNX Runtime: the model exported to ONNX (opset 17, dynamic batch), run with every graph
optimisation on. CPU execution provider; on a machine with an NVIDIA GPU and the
onnxruntime-gpu wheel, the TensorRT and CUDA providers are asked for first (ORT falls back
to the next provider for what one cannot run; `session_info.providers` says what it used).

Session settings, and why: every graph optimisation on (ORT_ENABLE_ALL, what a deployment
uses); `intra_op_num_threads` = the measured thread count, so that runtimes are compared at
equal threads; one inter-op thread and sequential execution, because a CNN backbone is a
chain of ops with nothing to run in parallel and extra pools only compete for the cores.

Absolute imports throughout: this module is `infertune.runtimes.onnxruntime`, and
`import onnxruntime` inside it must (and does) mean the library, not itself.
"""
from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Any, Mapping

from infertune.errors import ModelFileError
from infertune.runtimes.base import Runtime, nvidia_gpus, onnx_artifact, opener, register

# Options a caller may pass, besides "threads": "config" entries for add_session_config_entry
# (e.g. {"session.intra_op.allow_spinning": "0"}), "optimization" ("all"|"extended"|"basic"|
# "disable") and "device" ("cpu" | "cuda").
_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED",
           "basic": "ORT_ENABLE_BASIC", "disable": "ORT_DISABLE_ALL"}
_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def session_options(options: Mapping[str, Any]):
    """The SessionOptions described in the module docstring."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                          _LEVELS[options.get("optimization", "all")])
    so.intra_op_num_threads = int(options.get("threads") or os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only: ORT warns about unused initializers and the like
    for key, value in dict(options.get("config", {})).items():
        so.add_session_config_entry(str(key), str(value))
    return so


def providers_for(device: str) -> list[str]:
    """Execution providers in order of preference for `device`, limited to those installed."""
    import onnxruntime as ort

    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    have = set(ort.get_available_providers())
    return [p for p in _GPU_PROVIDERS if p in have] + ["CPUExecutionProvider"]


class OrtSession:
    """One ORT InferenceSession with a single image input."""

    def __init__(self, artifact: str, options: Mapping[str, Any]):
        import onnxruntime as ort

        if not os.path.isfile(artifact):
            raise ModelFileError("no such ONNX file", path=artifact)
        self.options = dict(options)
        self._version = ort.__version__
        self._sess = ort.InferenceSession(artifact, session_options(options),
                                          providers=providers_for(options.get("device", "cpu")))
        inputs = self._sess.get_inputs()
        if len(inputs) != 1:
            raise ModelFileError(f"expected one input, found {len(inputs)}", path=artifact)
        self._input = inputs[0].name

    def run(self, x):
        return self._sess.run(None, {self._input: x})

    def close(self) -> None:
        self._sess = None

    def describe(self) -> dict[str, Any]:
        return {"providers": self._sess.get_providers() if self._sess else None,
                "intra_op_num_threads": int(self.options.get("threads") or 0),
                "optimization": self.options.get("optimization", "all"),
                "onnxruntime": self._version}


def _gpu_wheel() -> bool:
    try:
        importlib.metadata.version("onnxruntime-gpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    accepts = ("torch", "onnx")
    requires = ("onnxruntime", "onnx")
    install = "pip install onnxruntime onnx"
    cast_torch_hint = ("ONNX Runtime takes float16 as a float16 graph with float32 I/O (fp16 "
                       "with target=onnxruntime) and has no bfloat16 CPU kernels")
    description = "ONNX Runtime, all graph optimisations (CPU; TensorRT/CUDA EPs on a GPU)"

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        return onnx_artifact(handle, workdir, input_size)

    def options(self, batch: int | None) -> dict[str, Any]:
        return {"device": "cuda"} if _gpu_wheel() and nvidia_gpus() else {}


register(OnnxRuntime())


@opener("onnxruntime", preload=("numpy", "onnxruntime"))
def open_onnxruntime(artifact: str, options: Mapping[str, Any]) -> OrtSession:
    """Opens an .onnx file with ONNX Runtime (CPU provider unless options say "cuda")."""
    return OrtSession(artifact, options)
