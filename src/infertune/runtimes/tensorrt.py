"""TensorRT (NVIDIA GPUs only): the model's ONNX built into a serialized engine (`.engine`).

Precision is decided by the ONNX, never by a torch cast (a torch module cast to float16 is
refused, as by every runtime that starts from ONNX):
- a float32 ONNX: FP32 with TF32 off, so that it is compared with FP32 runtimes as FP32;
  with `meta["precision"] == "fp16"` (a pass asked for FP16 and left the graph float), FP16
  through the builder flag on TensorRT 10 (BuilderFlag.FP16, weakly typed), or, on TensorRT
  11, which removed that flag, the graph converted to float16 (onnxconverter-common, float32
  I/O) and built strongly typed;
- a float16 ONNX (the fp16 pass with target onnxruntime): built strongly typed, as typed;
- a Q/DQ ONNX (int8_static with target onnxruntime): explicit quantization, strongly typed:
  the Q/DQ nodes place INT8, no calibrator (TensorRT 10 deprecated implicit INT8, 11 removed it).
What was built is written next to the engine (`model.engine.json`) and reported by the
session (`describe()["precision"]`).

One optimisation profile from the ONNX's real batch dimension: a static batch N gets a profile
of exactly N; a dynamic one 1 .. MAX_BATCH tuned for OPT_BATCH. A batch the profile cannot take
is split into pieces it can (padded to N for a static batch) and the outputs joined: an
evaluation batch of 256 runs as four of 64 instead of failing.

A run copies the numpy batch to device buffers (cuda-python's runtime bindings: no CUDA torch,
the project pins the CPU build), executes on a CUDA stream, waits for it and copies the outputs
back: the measured time is host to host, as a service sees it, and `run` returns only when the
outputs are on the host (the harness's Session contract: synchronised timing).

Without an NVIDIA GPU, the tensorrt package or cuda-python, `available()` names what is missing
in one line; nothing here is imported on such a machine.
Absolute imports: this module is `infertune.runtimes.tensorrt`; `import tensorrt` is the library.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from infertune.errors import RuntimeUnavailable
from infertune.runtimes import _cuda
from infertune.runtimes.base import (LOW_PRECISION, ArtifactError, Incompatible, Loader, Runtime,
                                     Tolerance, TritonBackend, first_line, onnx_artifact, opener,
                                     register, workdir_for)

OPT_BATCH, MAX_BATCH = 8, 64
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
REQUIRES = (("tensorrt", "tensorrt"), ("onnx", "onnx"), ("cuda.bindings.runtime", "cuda-python"))


# ---------------------------------------------------------------------------- build plan
@dataclass(frozen=True)
class BatchProfile:
    """The engine's one optimisation profile for the batch dimension.

    Attributes:
        input: the ONNX input's name.
        min, opt, max: batch sizes of the profile (all equal for a static batch).
        chw: the per-sample dimensions.
        static: the ONNX fixes the batch (min == opt == max == that batch).
    """

    input: str
    min: int
    opt: int
    max: int
    chw: tuple[int, int, int]
    static: bool

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return tuple((b, *self.chw) for b in (self.min, self.opt, self.max))  # type: ignore


def batch_pieces(n: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """(start, stop, batch it runs at) for a batch of `n` on a profile of batches lo..hi: one
    piece where it fits, else pieces of `hi`; a static profile (lo == hi) runs a short last
    piece padded to `hi` (the session drops the padded rows' outputs)."""
    if lo <= n <= hi:
        return [(0, n, n)]
    pieces = []
    for start in range(0, n, hi):
        stop = min(start + hi, n)
        pieces.append((start, stop, hi if lo == hi else max(stop - start, lo)))
    return pieces


def batch_profile(model: Any, chw: tuple[int, int, int]) -> BatchProfile:
    """The profile for an ONNX ModelProto whose single image input has per-sample dims `chw`
    (the model's input spec: they are used where the ONNX leaves them symbolic)."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise Incompatible(f"TensorRT here takes one image input; the ONNX has {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    batch = dims[0].dim_value if dims and dims[0].HasField("dim_value") else 0
    if batch > 0:
        return BatchProfile(inputs[0].name, batch, batch, batch, chw, True)
    return BatchProfile(inputs[0].name, 1, OPT_BATCH, MAX_BATCH, chw, False)


@dataclass(frozen=True)
class EnginePlan:
    """How the engine is built, and the precision it is reported at.

    Attributes:
        precision: "fp32", "fp16" or "int8".
        strongly_typed: the ONNX's types decide each layer's precision.
        fp16_flag: BuilderFlag.FP16 on a weakly typed network (TensorRT 10).
        convert_fp16: the float32 ONNX is converted to float16 first (TensorRT >= 11).
        how: one line for the report.
    """

    precision: str
    strongly_typed: bool
    fp16_flag: bool
    convert_fp16: bool
    how: str


def graph_precision(model: Any) -> str:
    """"int8" (Q/DQ nodes), "fp16" (float16 weights) or "fp32", read from an ONNX ModelProto."""
    if any(n.op_type in QDQ_OPS for n in model.graph.node):
        return "int8"
    if any(t.data_type == 10 for t in model.graph.initializer):  # TensorProto.FLOAT16
        return "fp16"
    return "fp32"


def engine_plan(graph: str, requested: str, trt_major: int) -> EnginePlan:
    """The build for an ONNX whose graph is `graph` precision when `requested` was asked for."""
    if graph == "int8":
        return EnginePlan("int8", True, False, False, "explicit quantization: the ONNX's Q/DQ "
                          "nodes place INT8 (strongly typed network, no calibrator)")
    if graph == "fp16":
        return EnginePlan("fp16", True, False, False,
                          "the float16 ONNX built as typed (strongly typed network)")
    if requested == "int8":
        raise Incompatible("TensorRT takes INT8 from a Q/DQ ONNX (int8_static with target "
                           "onnxruntime); this ONNX has no Q/DQ node")
    if requested == "fp16" and trt_major < 11:
        return EnginePlan("fp16", False, True, False,
                          "BuilderFlag.FP16 on the float32 ONNX (TensorRT picks FP16 kernels)")
    if requested == "fp16":
        return EnginePlan("fp16", True, False, True,
                          f"TensorRT {trt_major} has no FP16 builder flag: the float32 ONNX "
                          "converted to float16 (onnxconverter-common, float32 I/O), strongly "
                          "typed")
    return EnginePlan("fp32", True, False, False, "float32 ONNX, TF32 off")


# ---------------------------------------------------------------------------- build
def _logger():
    import tensorrt as trt

    return trt.Logger(trt.Logger.ERROR)


def trt_major() -> int:
    import tensorrt as trt

    return int(trt.__version__.split(".")[0])


def _fp16_onnx(model: Any) -> Any:
    from onnxconverter_common import float16

    return float16.convert_float_to_float16(model, keep_io_types=True)


def build_engine(onnx_path: Path, out: Path, plan: EnginePlan, profile: BatchProfile) -> Path:
    """Parses the ONNX, builds the engine `plan` describes and writes it to `out`, with the
    plan and profile in `out` + ".json"."""
    import onnx
    import tensorrt as trt

    model = onnx.load(str(onnx_path))
    if plan.convert_fp16:
        model = _fp16_onnx(model)
    logger = _logger()
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed else 0
    network = builder.create_network(flags)  # explicit batch is the only mode since 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.SerializeToString(), str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"TensorRT cannot parse the ONNX model: {errors[:300]}")
    config = builder.create_builder_config()
    # TF32 convolutions would make an FP32 figure a reduced-precision one.
    config.clear_flag(trt.BuilderFlag.TF32)
    if plan.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(profile.input, *profile.shapes())
    config.add_optimization_profile(trt_profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ArtifactError("TensorRT could not build an engine (see its log)")
    out.write_bytes(bytes(engine))
    facts = {"plan": asdict(plan), "profile": asdict(profile), "tensorrt": trt.__version__}
    Path(f"{out}.json").write_text(json.dumps(facts, indent=1))
    return out


LOADER = Loader("tensorrt, cuda-python", (
    "import tensorrt as trt\n"
    "from cuda.bindings import runtime as cudart\n"
    "_engine = trt.Runtime(trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine(\n"
    "    Path(MODEL).read_bytes())\n"
    "_context = _engine.create_execution_context()\n"
    "_names = [_engine.get_tensor_name(i) for i in range(_engine.num_io_tensors)]\n"
    "_input = next(n for n in _names if _engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)\n"
    "_outputs = [n for n in _names if n != _input]\n\n\n"
    "def _ok(result):\n"
    "    if int(result[0]) != 0:\n"
    "        raise RuntimeError(f'CUDA call failed: {result[0]}')\n"
    "    return result[1] if len(result) > 1 else None\n\n\n"
    "def predict(x):\n"
    "    x = np.ascontiguousarray(x, dtype=trt.nptype(_engine.get_tensor_dtype(_input)))\n"
    "    _context.set_input_shape(_input, x.shape)\n"
    "    host = {_input: x}\n"
    "    for n in _outputs:\n"
    "        host[n] = np.empty(tuple(_context.get_tensor_shape(n)),\n"
    "                           trt.nptype(_engine.get_tensor_dtype(n)))\n"
    "    device = {n: _ok(cudart.cudaMalloc(a.nbytes)) for n, a in host.items()}\n"
    "    _ok(cudart.cudaMemcpy(device[_input], x.ctypes.data, x.nbytes,\n"
    "                          cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))\n"
    "    for n, ptr in device.items():\n"
    "        _context.set_tensor_address(n, ptr)\n"
    "    stream = _ok(cudart.cudaStreamCreate())\n"
    "    if not _context.execute_async_v3(int(stream)):\n"
    "        raise RuntimeError('TensorRT execution failed')\n"
    "    _ok(cudart.cudaStreamSynchronize(stream))\n"
    "    for n in _outputs:\n"
    "        _ok(cudart.cudaMemcpy(host[n].ctypes.data, device[n], host[n].nbytes,\n"
    "                              cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost))\n"
    "    for ptr in device.values():\n"
    "        _ok(cudart.cudaFree(ptr))\n"
    "    _ok(cudart.cudaStreamDestroy(stream))\n"
    "    return host[_outputs[0]]\n"))


class TensorRtRuntime(Runtime):
    name = "tensorrt"
    accepts = ("torch", "onnx")
    requires = tuple(module for module, _ in REQUIRES)
    install = _cuda.GPU_EXTRA
    # GPU FP32 kernels (other tactics and summation order) with TF32 off.
    tolerance = Tolerance(1e-3, "GPU FP32 kernels, TF32 disabled: rounding differences only")
    description = "TensorRT engine: FP32 (TF32 off), FP16 or Q/DQ INT8 (NVIDIA GPU only)"
    artifact_files = ".engine"
    artifact_note = "serialized TensorRT engine (GPU, this TensorRT version and GPU only)"
    loader = LOADER
    # Triton's TensorRT backend; it expects the plan as model.plan.
    triton = TritonBackend("platform", "tensorrt_plan", "model.plan")
    prior_speedups = {"fp32": 10.0, "fp16": 20.0, "int8": 25.0}
    needs_gpu = True
    rank = 60

    def available(self) -> tuple[bool, str | None]:
        why = _cuda.gpu_missing(REQUIRES)
        return (False, f"{why} ({self.install})") if why else (True, None)

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        import onnx

        source = onnx_artifact(handle, workdir, input_size)
        spec = handle.input_spec if input_size is None else handle.input_spec.with_hw(*input_size)
        model = onnx.load(str(source), load_external_data=False)
        plan = engine_plan(graph_precision(model), str(handle.meta.get("precision") or "fp32"),
                           trt_major())
        profile = batch_profile(model, spec.chw)
        out = workdir_for(workdir, self.name) / "model.engine"
        try:
            return build_engine(source, out, plan, profile)
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(f"TensorRT engine build failed: {first_line(exc)}") from None

    def options(self, batch: int | None) -> dict[str, Any]:
        return {"device": "cuda"}


register(TensorRtRuntime())


def tolerance_for(precision: str) -> Tolerance:
    """The parity bound for an engine built at `precision` (FP16 as every FP16 candidate)."""
    return LOW_PRECISION["fp16"] if precision == "fp16" else TensorRtRuntime.tolerance


# ---------------------------------------------------------------------------- session
class TensorRtSession:
    """One execution context on one CUDA stream; device buffers sized for the profile's
    largest batch, allocated once."""

    def __init__(self, artifact: str, options: Mapping[str, Any]):
        import tensorrt as trt

        rt = _cuda.cudart()
        self._trt, self._rt = trt, rt
        self._facts = _read_facts(artifact)
        before = _cuda.memory_used_mb()
        self._engine = trt.Runtime(_logger()).deserialize_cuda_engine(Path(artifact).read_bytes())
        if self._engine is None:
            raise ArtifactError("the TensorRT engine does not load back", path=artifact)
        self._context = self._engine.create_execution_context()
        self._stream = _cuda.check(rt.cudaStreamCreate())
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._input = next(n for n in names
                           if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._outputs = [n for n in names if n != self._input]
        lo, _, hi = self._engine.get_tensor_profile_shape(self._input, 0)
        self._min, self._max = int(lo[0]), int(hi[0])
        self._buffers = {n: self._allocate(n) for n in names}
        self._memory_mb = round(_cuda.memory_used_mb() - before, 1)

    def _allocate(self, name: str) -> _cuda.DeviceBuffer:
        import numpy as np

        largest = tuple(self._engine.get_tensor_profile_shape(self._input, 0)[2])
        self._context.set_input_shape(self._input, largest)
        shape = tuple(self._context.get_tensor_shape(name))
        dtype = self._trt.nptype(self._engine.get_tensor_dtype(name))
        return _cuda.DeviceBuffer(math.prod(shape) * np.dtype(dtype).itemsize)

    def run(self, x):
        import numpy as np

        pieces = batch_pieces(x.shape[0], self._min, self._max)
        if len(pieces) == 1 and pieces[0][2] == x.shape[0]:
            return self._run_piece(x)
        outs = []
        for start, stop, size in pieces:
            part = x[start:stop]
            if size > stop - start:  # a static batch: the last piece padded with zeros
                pad = np.zeros((size - (stop - start), *part.shape[1:]), dtype=part.dtype)
                part = np.concatenate([part, pad])
            outs.append([o[:stop - start] for o in self._run_piece(part)])
        return [np.concatenate([o[i] for o in outs]) for i in range(len(self._outputs))]

    def _run_piece(self, x):
        import numpy as np

        rt, trt = self._rt, self._trt
        dtype = trt.nptype(self._engine.get_tensor_dtype(self._input))
        x = np.ascontiguousarray(x, dtype=dtype)
        self._context.set_input_shape(self._input, tuple(x.shape))
        host = {n: np.empty(tuple(self._context.get_tensor_shape(n)),
                            trt.nptype(self._engine.get_tensor_dtype(n))) for n in self._outputs}
        to_device, to_host = (rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                              rt.cudaMemcpyKind.cudaMemcpyDeviceToHost)
        _cuda.check(rt.cudaMemcpyAsync(self._buffers[self._input].ptr, x.ctypes.data, x.nbytes,
                                       to_device, self._stream))
        for name, buffer in self._buffers.items():
            self._context.set_tensor_address(name, buffer.ptr)
        if not self._context.execute_async_v3(int(self._stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        for name, out in host.items():
            _cuda.check(rt.cudaMemcpyAsync(out.ctypes.data, self._buffers[name].ptr, out.nbytes,
                                           to_host, self._stream))
        _cuda.check(rt.cudaStreamSynchronize(self._stream))
        return [host[n] for n in self._outputs]

    def close(self) -> None:
        for buffer in getattr(self, "_buffers", {}).values():
            buffer.free()
        self._buffers = {}
        if getattr(self, "_stream", None) is not None:
            _cuda.check(self._rt.cudaStreamDestroy(self._stream))
            self._stream = None
        self._context = self._engine = None

    def describe(self) -> dict[str, Any]:
        plan = self._facts.get("plan", {})
        return {"device": _cuda.device_name(0), "tensorrt": self._trt.__version__,
                "precision": plan.get("precision"), "how": plan.get("how"),
                "profile_batch": [self._min, self._max],
                "gpu_memory_mb": self._memory_mb,
                "io_buffers_mb": round(sum(b.nbytes for b in self._buffers.values()) / 2**20, 2)}


def _read_facts(artifact: str) -> dict[str, Any]:
    path = Path(f"{artifact}.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # an engine from elsewhere: the session still runs, the plan is unknown


@opener("tensorrt", preload=("numpy", "tensorrt"))
def open_tensorrt(artifact: str, options: Mapping[str, Any]) -> TensorRtSession:
    """Deserializes the engine onto GPU 0."""
    why = _cuda.gpu_missing(REQUIRES)
    if why:
        raise RuntimeUnavailable(why)
    return TensorRtSession(artifact, options)
