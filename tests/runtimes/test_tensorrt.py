"""The TensorRT runtime's parts that need no GPU: the optimisation profile read from a static
or dynamic ONNX, the build plan per precision (read from real fp16 and Q/DQ ONNX files), the
splitting of a batch the profile cannot take, the run.py loader (executed against a fake
TensorRT and CUDA that compute y = 2x) and the Triton config. The engine itself is built and
run only by the GPU tests (test_gpu_runtimes.py)."""
from __future__ import annotations

import sys
import types

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from infertune.passes import PassContext, apply_passes
from infertune.passes.pipeline import to_onnx
from infertune.runtimes import RUNTIMES, Incompatible
from infertune.runtimes.base import LOW_PRECISION
from infertune.runtimes.tensorrt import (LOADER, MAX_BATCH, OPT_BATCH, BatchProfile,
                                         batch_pieces, batch_profile, engine_plan,
                                         graph_precision, tolerance_for)
from infertune.search.best import _loader, config_pbtxt
from infertune.types import InputSpec, ModelHandle


def conv_onnx(batch: int | str) -> onnx.ModelProto:
    """One 3->4 conv on a (batch, 3, 16, 16) input; `batch` an int (static) or a name."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, (4, 3, 1, 1), [0.5] * 12)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 16, 16])], [weight])
    return helper.make_model(graph)


def tiny_torch() -> ModelHandle:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 5)).eval()
    return ModelHandle(format="torch", obj=net, input_spec=InputSpec(shape=("batch", 3, 16, 16)),
                       name="tiny", source="test")


# ---------------------------------------------------------------------------- profiles
def test_static_batch_gets_a_profile_of_exactly_that_batch():
    profile = batch_profile(conv_onnx(4), (3, 16, 16))
    assert profile == BatchProfile("x", 4, 4, 4, (3, 16, 16), True)
    assert profile.shapes() == ((4, 3, 16, 16),) * 3


def test_dynamic_batch_gets_1_8_64():
    profile = batch_profile(conv_onnx("N"), (3, 16, 16))
    assert (profile.min, profile.opt, profile.max, profile.static) == (1, OPT_BATCH, MAX_BATCH,
                                                                        False)
    assert profile.shapes()[2] == (64, 3, 16, 16)


def test_the_project_export_is_dynamic_batch(tmp_path):
    handle = to_onnx(tiny_torch(), PassContext(workdir=tmp_path))
    profile = batch_profile(onnx.load(str(handle.path)), (3, 16, 16))
    assert not profile.static and profile.max == MAX_BATCH


def test_two_image_inputs_are_refused():
    model = conv_onnx("N")
    model.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3]))
    with pytest.raises(Incompatible, match="one image input"):
        batch_profile(model, (3, 16, 16))


@pytest.mark.parametrize("n, lo, hi, expected", [
    (8, 1, 64, [(0, 8, 8)]),  # fits: one piece
    (256, 1, 64, [(0, 64, 64), (64, 128, 64), (128, 192, 64), (192, 256, 64)]),
    (100, 1, 64, [(0, 64, 64), (64, 100, 36)]),  # dynamic: the rest runs at its own size
    (4, 4, 4, [(0, 4, 4)]),
    (10, 4, 4, [(0, 4, 4), (4, 8, 4), (8, 10, 4)]),  # static: the short piece padded to 4
    (1, 4, 4, [(0, 1, 4)]),
])
def test_batches_over_the_profile_are_split_not_failed(n, lo, hi, expected):
    pieces = batch_pieces(n, lo, hi)
    assert pieces == expected
    assert [s for s, _, _ in pieces] == list(range(0, n, hi if n > hi else n))
    assert pieces[-1][1] == n and all(lo <= size <= hi for _, _, size in pieces)


# ---------------------------------------------------------------------------- precision
def test_fp16_is_the_builder_flag_on_a_float_onnx_with_tensorrt_10():
    plan = engine_plan("fp32", "fp16", 10)
    assert plan.precision == "fp16" and plan.fp16_flag and not plan.strongly_typed
    assert not plan.convert_fp16 and "BuilderFlag.FP16" in plan.how


def test_fp16_on_tensorrt_11_converts_the_onnx_it_has_no_flag():
    plan = engine_plan("fp32", "fp16", 11)
    assert plan.precision == "fp16" and plan.convert_fp16 and plan.strongly_typed
    assert not plan.fp16_flag


def test_fp32_is_strongly_typed_without_flags():
    plan = engine_plan("fp32", "fp32", 10)
    assert (plan.precision, plan.fp16_flag, plan.convert_fp16) == ("fp32", False, False)
    assert tolerance_for("fp32").rel <= 1e-3 and tolerance_for("fp16") == LOW_PRECISION["fp16"]


def test_int8_needs_a_qdq_onnx():
    with pytest.raises(Incompatible, match="Q/DQ"):
        engine_plan("fp32", "int8", 10)
    plan = engine_plan("int8", "int8", 10)
    assert plan.precision == "int8" and plan.strongly_typed and not plan.fp16_flag


def test_graph_precision_of_the_passes_outputs(tmp_path):
    """The fp16 pass (target onnxruntime) and int8_static write what the plan reads."""
    onnx_model = to_onnx(tiny_torch(), PassContext(workdir=tmp_path / "export"))
    assert graph_precision(onnx.load(str(onnx_model.path))) == "fp32"
    half, _ = apply_passes(onnx_model, [("fp16", {"target": "onnxruntime"})],
                           PassContext(workdir=tmp_path / "fp16"))
    assert graph_precision(onnx.load(str(half.path))) == "fp16"
    assert engine_plan("fp16", half.meta["precision"], 10).strongly_typed
    from infertune.data.dataset import Dataset
    from infertune.data.preprocess import resolve_preprocess

    images = np.random.default_rng(0).standard_normal((16, 3, 16, 16)).astype(np.float32)
    calibration = Dataset(images, None, [], "seeded normal images", resolve_preprocess("none"))
    int8, _ = apply_passes(onnx_model, [("int8_static", {"method": "minmax"})],
                           PassContext(workdir=tmp_path / "int8", calibration=calibration))
    assert graph_precision(onnx.load(str(int8.path))) == "int8"


def test_a_torch_fp16_cast_is_refused_not_exported():
    from infertune.runtimes.tensorrt import TensorRtRuntime

    cast = ModelHandle(format="torch", obj=tiny_torch().obj.half(),
                       input_spec=InputSpec(shape=("batch", 3, 16, 16)), name="tiny", source="test",
                       meta={"torch_precision": "fp16", "precision": "fp16"})
    why = TensorRtRuntime().incompatible(cast)
    assert why and "cast to fp16" in why


# ---------------------------------------------------------------------------- best/ and Triton
class _FakeCuda(types.ModuleType):
    """cudart with host memory standing in for the device (pointers index a dict)."""

    class cudaMemcpyKind:
        cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost = "htod", "dtoh"

    def __init__(self):
        super().__init__("cudart")
        self.memory: dict[int, bytearray] = {}
        self.freed: list[int] = []

    def cudaMalloc(self, n):
        ptr = 1000 + len(self.memory)
        self.memory[ptr] = bytearray(n)
        return 0, ptr

    def cudaMemcpy(self, dst, src, n, kind):
        import ctypes

        if kind == "htod":
            self.memory[dst][:n] = ctypes.string_at(src, n)
        else:
            ctypes.memmove(dst, bytes(self.memory[src]), n)
        return (0,)

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        return self.cudaMemcpy(dst, src, n, kind)

    def cudaMemGetInfo(self):
        used = sum(len(b) for p, b in self.memory.items() if p not in self.freed)
        return 0, 2**30 - used, 2**30

    def cudaGetDeviceProperties(self, index):
        return 0, types.SimpleNamespace(name=b"Fake GPU\x00\x00")

    class cudaError_t:
        cudaSuccess = 0

    def cudaStreamCreate(self):
        return 0, 7

    def cudaStreamSynchronize(self, stream):
        return (0,)

    def cudaStreamDestroy(self, stream):
        return (0,)

    def cudaFree(self, ptr):
        self.freed.append(ptr)
        return (0,)


def _fake_trt(cuda: _FakeCuda, lo: int = 1, hi: int = 64) -> types.ModuleType:
    """An engine with input "x" (N, 3) and output "y" = 2x, computed in the fake memory, with
    a profile of batches lo..hi that it enforces as TensorRT does."""
    trt = types.ModuleType("tensorrt")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dtype: np.float32
    trt.Logger = type("Logger", (), {"ERROR": 1, "__init__": lambda self, level: None})

    class Context:
        def __init__(self):
            self.shape, self.addr = None, {}

        def set_input_shape(self, name, shape):
            assert lo <= shape[0] <= hi, f"batch {shape[0]} outside the profile {lo}..{hi}"
            self.shape = tuple(shape)

        def get_tensor_shape(self, name):
            return self.shape

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr

        def execute_async_v3(self, stream):
            n = int(np.prod(self.shape))
            x = np.frombuffer(bytes(cuda.memory[self.addr["x"]]), np.float32)[:n]
            cuda.memory[self.addr["y"]][:4 * n] = (2 * x).astype(np.float32).tobytes()
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ["x", "y"][i]

        def get_tensor_mode(self, name):
            return "in" if name == "x" else "out"

        def get_tensor_dtype(self, name):
            return "float32"

        def create_execution_context(self):
            return Context()

        def get_tensor_profile_shape(self, name, index):
            return [(lo, 3), (lo, 3), (hi, 3)]

    trt.Runtime = lambda logger: types.SimpleNamespace(deserialize_cuda_engine=lambda b: Engine())
    trt.__version__ = "10.fake"
    return trt


@pytest.mark.parametrize("lo, hi, n", [(1, 64, 5), (1, 64, 150), (4, 4, 10), (4, 4, 1)])
def test_session_splits_and_pads_within_the_profile(monkeypatch, tmp_path, lo, hi, n):
    """The session's device-buffer path on a fake TensorRT/CUDA: every call stays inside the
    profile (the fake asserts it), outputs come back in order, padding rows are dropped."""
    from infertune.runtimes import _cuda
    from infertune.runtimes.tensorrt import TensorRtSession

    cuda = _FakeCuda()
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(cuda, lo, hi))
    monkeypatch.setattr(_cuda, "cudart", lambda: cuda)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine")
    (tmp_path / "model.engine.json").write_text('{"plan": {"precision": "fp16", "how": "x"}}')
    session = TensorRtSession(str(engine), {})
    x = np.random.default_rng(0).standard_normal((n, 3)).astype(np.float32)
    (y,) = session.run(x)
    np.testing.assert_array_equal(y, 2 * x)
    info = session.describe()
    assert info["precision"] == "fp16" and info["device"] == "Fake GPU"
    assert info["profile_batch"] == [lo, hi]
    # one buffer per tensor, sized once for the profile's largest batch (float32, 3 per row)
    assert [len(b) for b in cuda.memory.values()] == [4 * 3 * hi] * 2
    session.close()
    assert sorted(cuda.freed) == sorted(cuda.memory)  # every buffer released


def test_run_py_loader_is_tensorrts_and_runs(monkeypatch, tmp_path):
    needs, code = _loader("tensorrt")
    assert (needs, code) == (LOADER.needs, LOADER.code) and "onnxruntime" not in code
    cuda = _FakeCuda()
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cuda
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(cuda))
    monkeypatch.setitem(sys.modules, "cuda", types.ModuleType("cuda"))
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    (tmp_path / "model.engine").write_bytes(b"engine")
    from pathlib import Path

    scope = {"np": np, "Path": Path, "MODEL": str(tmp_path / "model.engine")}
    exec(compile(code, "run.py", "exec"), scope)  # the lines best/run.py is made of
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(scope["predict"](x), 2 * x)
    assert len(cuda.freed) == 2  # both buffers released after the call


def test_triton_serves_an_engine_with_the_tensorrt_plan_backend():
    backend = RUNTIMES.triton_backends()["tensorrt"]
    assert (backend.key, backend.value, backend.filename) == ("platform", "tensorrt_plan",
                                                              "model.plan")
    text = config_pbtxt("darknet", backend.key, backend.value,
                        {"name": "input", "dims": [3, 448, 448]},
                        [{"name": "output", "dims": [1000]}])
    assert 'platform: "tensorrt_plan"' in text and "dims: [ 3, 448, 448 ]" in text
