"""TensorRT (NVIDIA GPUs only): the ONNX export built into a serialized engine (`.engine`),
FP32 with TF32 disabled, so that it is compared with FP32 runtimes as an FP32 figure.

The engine has one optimisation profile for the batch dimension (1 .. MAX_BATCH, tuned for
OPT_BATCH). A run copies the numpy batch to the GPU, executes on a CUDA stream, waits for it
and copies the outputs back: the measured time is host to host, as a service sees it, and
`run` returns only when the outputs are on the host (the harness's Session contract).
GPU buffers are torch CUDA tensors (torch is a dependency anyway; no pycuda needed).

Without an NVIDIA GPU and the tensorrt package, `available()` says which is missing and the
runtime is reported as unavailable; nothing here is imported on such a machine.
Absolute imports: this module is `infertune.runtimes.tensorrt`; `import tensorrt` is the library.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from infertune.errors import RuntimeUnavailable
from infertune.runtimes.base import (ArtifactError, Runtime, Tolerance, first_line, nvidia_gpus,
                                     onnx_artifact, opener, register, workdir_for)

OPT_BATCH, MAX_BATCH = 8, 64


def _logger():
    import tensorrt as trt

    return trt.Logger(trt.Logger.ERROR)


def build_engine(onnx_path: Path, out: Path, chw: tuple[int, int, int]) -> Path:
    """Parses the ONNX file and writes a serialized FP32 engine to `out`."""
    import tensorrt as trt

    logger = _logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"TensorRT cannot parse the ONNX model: {errors[:300]}")
    config = builder.create_builder_config()
    # TF32 matmuls would make this a reduced-precision figure, not an FP32 one.
    config.clear_flag(trt.BuilderFlag.TF32)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    profile.set_shape(name, (1, *chw), (OPT_BATCH, *chw), (MAX_BATCH, *chw))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ArtifactError("TensorRT could not build an engine (see its log)")
    out.write_bytes(bytes(engine))
    return out


class TensorRtRuntime(Runtime):
    name = "tensorrt"
    accepts = ("torch", "onnx")
    requires = ("tensorrt", "onnx", "onnxruntime")
    install = "pip install tensorrt (NVIDIA GPU and driver required)"
    # GPU FP32 kernels (cuDNN/cuBLAS tactics, other summation order) with TF32 off.
    tolerance = Tolerance(1e-3, "GPU FP32 kernels, TF32 disabled: rounding differences only")
    description = "TensorRT FP32 engine (NVIDIA GPU only)"
    artifact_files = ".engine"
    artifact_note = "serialized TensorRT engine (GPU)"
    # No `loader`: best/run.py falls back to ONNX Runtime's (search/best.py), no `triton`.
    prior_speedups = {"fp32": 10.0, "fp16": 20.0}
    needs_gpu = True
    rank = 60

    def available(self) -> tuple[bool, str | None]:
        # The GPU first: without one, whether the package is installed does not matter.
        if not nvidia_gpus():
            return False, ("TensorRT needs an NVIDIA GPU: none found (no nvidia-smi or no "
                           "GPU listed)")
        return super().available()

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        source = onnx_artifact(handle, workdir, input_size)
        spec = handle.input_spec if input_size is None else handle.input_spec.with_hw(*input_size)
        try:
            return build_engine(source, workdir_for(workdir, self.name) / "model.engine", spec.chw)
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(f"TensorRT engine build failed: {first_line(exc)}") from None

    def options(self, batch: int | None) -> dict[str, Any]:
        return {"device": "cuda"}


register(TensorRtRuntime())


class TensorRtSession:
    """One execution context; I/O through torch CUDA tensors on one stream."""

    def __init__(self, artifact: str, options: Mapping[str, Any]):
        import tensorrt as trt
        import torch

        if not torch.cuda.is_available():
            raise RuntimeUnavailable("TensorRT needs CUDA, and torch sees no CUDA device")
        self._trt, self._torch = trt, torch
        self._engine = trt.Runtime(_logger()).deserialize_cuda_engine(Path(artifact).read_bytes())
        if self._engine is None:
            raise ArtifactError("the TensorRT engine does not load back", path=artifact)
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names
                        if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if n not in self._inputs]

    def run(self, x):
        torch = self._torch
        name = self._inputs[0]
        with torch.cuda.stream(self._stream):
            device_x = torch.from_numpy(x).to("cuda", non_blocking=False)
            self._context.set_input_shape(name, tuple(x.shape))
            self._context.set_tensor_address(name, device_x.data_ptr())
            outs = [torch.empty(tuple(self._context.get_tensor_shape(n)), device="cuda",
                                dtype=torch.float32) for n in self._outputs]
            for n, t in zip(self._outputs, outs):
                self._context.set_tensor_address(n, t.data_ptr())
            self._context.execute_async_v3(self._stream.cuda_stream)
        self._stream.synchronize()
        return [t.cpu().numpy() for t in outs]

    def close(self) -> None:
        self._context = self._engine = None

    def describe(self) -> dict[str, Any]:
        return {"device": self._torch.cuda.get_device_name(0), "precision": "fp32 (TF32 off)",
                "tensorrt": self._trt.__version__}


@opener("tensorrt", preload=("numpy", "tensorrt", "torch"))
def open_tensorrt(artifact: str, options: Mapping[str, Any]) -> TensorRtSession:
    """Deserializes the engine onto GPU 0."""
    return TensorRtSession(artifact, options)
