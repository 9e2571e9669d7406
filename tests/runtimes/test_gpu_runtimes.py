"""The GPU runtimes (tensorrt, onnxruntime-cuda, onnxruntime-tensorrt).

Without a GPU (every CPU machine, CI): what `available()` says for each missing piece, the
CUDA driver probe against fake libcuda answers, the ORT TensorRT provider's profile options,
and that the CPU "onnxruntime" runtime runs on exactly the CPU provider.
With one (`-m gpu` on a GPU host): each GPU runtime builds the tiny model, reproduces it in a
measuring child within its tolerance, and is timed; TensorRT also at FP16 (builder flag or
converted ONNX) against the FP16 tolerance. Without a GPU those skip, with the runtime's reason.
No timing is asserted beyond "it was measured".
"""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
from onnx import TensorProto, helper, save

from infertune.load import load_model
from infertune.measure import SessionFactory, measure
from infertune.measure.inprocess import reference_outputs
from infertune.measure.parity import write_reference
from infertune.measure.timing import TimingConfig
from infertune.runtimes import RUNTIMES, _cuda
from infertune.runtimes.onnxruntime_tensorrt import profile_options, tensorrt_provider
from infertune.runtimes.session import get_opener
from infertune.runtimes.tensorrt import tolerance_for

from tiny_models import TINY_CFG  # Darknet19's layer kinds at 16x16

GPU_RUNTIMES = [name for name in RUNTIMES.ordered() if RUNTIMES.get(name).needs_gpu]
BATCH = 2


def test_the_gpu_runtimes_are_registered_as_such():
    assert GPU_RUNTIMES == ["tensorrt", "onnxruntime-cuda", "onnxruntime-tensorrt"]
    for name in GPU_RUNTIMES:
        assert RUNTIMES.get(name).options(1) == {"device": "cuda"}  # GPU energy counter


# ---------------------------------------------------------------------------- availability
@pytest.fixture
def no_driver(monkeypatch):
    monkeypatch.setattr(_cuda, "driver_devices", lambda: (0, "no NVIDIA GPU: no CUDA driver "
                                                             "(libcuda.so.1 not found)"))


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(_cuda, "driver_devices", lambda: (1, None))


def _installed(monkeypatch, *modules: str) -> None:
    monkeypatch.setattr(_cuda, "has_module", lambda name: name in modules)


def test_tensorrt_names_each_missing_piece(monkeypatch, one_gpu):
    trt = RUNTIMES.get("tensorrt")
    _installed(monkeypatch, "onnx", "cuda.bindings.runtime")
    ok, why = trt.available()
    assert not ok and why.startswith("tensorrt not installed") and "infertune[gpu]" in why
    _installed(monkeypatch, "onnx", "tensorrt")
    assert trt.available()[1].startswith("cuda-python not installed")
    _installed(monkeypatch, "onnx", "tensorrt", "cuda.cudart")  # cuda-python < 12.6 counts
    assert trt.available() == (True, None)


def test_no_gpu_comes_first_and_is_said_once(monkeypatch, no_driver):
    _installed(monkeypatch, "onnx", "tensorrt", "cuda.bindings.runtime")
    ok, why = RUNTIMES.get("tensorrt").available()
    assert not ok and why.startswith("no NVIDIA GPU: no CUDA driver (libcuda.so.1 not found)")
    assert "not installed" not in why and "\n" not in why


def test_ort_gpu_runtimes_need_the_gpu_wheel(monkeypatch, one_gpu):
    from infertune.runtimes import onnxruntime_cuda

    _installed(monkeypatch, "tensorrt")
    monkeypatch.setattr(onnxruntime_cuda, "ort_gpu_wheel", lambda: False)
    for name in ("onnxruntime-cuda", "onnxruntime-tensorrt"):
        ok, why = RUNTIMES.get(name).available()
        assert not ok and "onnxruntime-gpu not installed" in why
    monkeypatch.setattr(onnxruntime_cuda, "ort_gpu_wheel", lambda: True)
    assert RUNTIMES.get("onnxruntime-cuda").available() == (True, None)
    assert RUNTIMES.get("onnxruntime-tensorrt").available() == (True, None)
    _installed(monkeypatch)
    ok, why = RUNTIMES.get("onnxruntime-tensorrt").available()
    assert not ok and why.startswith("tensorrt not installed")
    assert RUNTIMES.get("onnxruntime-cuda").available() == (True, None)  # needs no TensorRT


def test_this_machine_says_why_in_one_line():
    for name in GPU_RUNTIMES:
        ok, why = RUNTIMES.get(name).available()
        assert ok or (why and "\n" not in why and (ok or "GPU" in why or "installed" in why))


class _FakeLibcuda:
    def __init__(self, init_rc: int, count: int):
        self.init_rc, self.count = init_rc, count

    def cuInit(self, flags):
        return self.init_rc

    def cuDeviceGetCount(self, ref):
        ref._obj.value = self.count
        return 0


@pytest.mark.parametrize("lib, expected", [
    (None, (0, "no NVIDIA GPU: no CUDA driver (libcuda.so.1 not found)")),
    (_FakeLibcuda(100, 0), (0, "no NVIDIA GPU: the CUDA driver finds no device")),
    (_FakeLibcuda(3, 0), (0, "no usable NVIDIA GPU: the CUDA driver does not initialise "
                             "(cuInit error 3)")),
    (_FakeLibcuda(0, 0), (0, "no NVIDIA GPU: the CUDA driver lists no device")),
    (_FakeLibcuda(0, 2), (2, None)),
])
def test_the_driver_probe(monkeypatch, lib, expected):
    def cdll(name):
        assert name == "libcuda.so.1"
        if lib is None:
            raise OSError("not found")
        return lib

    _cuda.driver_devices.cache_clear()
    monkeypatch.setattr(ctypes, "CDLL", cdll)
    try:
        assert _cuda.driver_devices() == expected
    finally:
        _cuda.driver_devices.cache_clear()


def test_cuda_errors_are_raised_by_name():
    rt = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python not installed")
    with pytest.raises(RuntimeError, match="CUDA call failed: cudaErrorInvalidValue"):
        _cuda.check((rt.cudaError_t.cudaErrorInvalidValue, None))
    assert _cuda.check((rt.cudaError_t.cudaSuccess, 5)) == 5
    assert _cuda.check((rt.cudaError_t.cudaSuccess,)) is None


# ---------------------------------------------------------------------------- ONNX Runtime
def _onnx(tmp_path, batch):
    weight = helper.make_tensor("w", TensorProto.FLOAT, (4, 3, 1, 1), [0.5] * 12)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 16, 16])], [weight])
    path = tmp_path / f"conv-{batch}.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_ort_tensorrt_profile_follows_the_batch_dimension(tmp_path):
    assert profile_options(_onnx(tmp_path, "N")) == {
        "trt_profile_min_shapes": "image:1x3x16x16", "trt_profile_opt_shapes": "image:8x3x16x16",
        "trt_profile_max_shapes": "image:64x3x16x16"}
    static = profile_options(_onnx(tmp_path, 4))
    assert set(static.values()) == {"image:4x3x16x16"}
    name, options = tensorrt_provider(_onnx(tmp_path, "N"))
    assert name == "TensorrtExecutionProvider" and options["trt_fp16_enable"] == "0"
    assert options["trt_engine_cache_path"].endswith("ort_trt_cache")


def test_cpu_onnxruntime_runs_on_the_cpu_provider_only(tmp_path, monkeypatch):
    import onnxruntime as ort

    runtime = RUNTIMES.get("onnxruntime")
    assert not runtime.needs_gpu and "device" not in runtime.options(None)
    # As if onnxruntime-gpu were installed: the session must still name only the CPU.
    have = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: have)
    made = []
    real = ort.InferenceSession

    def spy(path, options=None, providers=None, **kw):
        made.append(providers)
        return real(path, options, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    session = get_opener("onnxruntime", runtime.opener_module)(_onnx(tmp_path, "N"),
                                                              {"threads": 1})
    out = session.run(np.ones((2, 3, 16, 16), np.float32))
    assert made == [["CPUExecutionProvider"]]
    assert session.describe()["providers"] == ["CPUExecutionProvider"]
    np.testing.assert_allclose(out[0], 1.5, rtol=1e-6)  # 3 channels x 0.5


# ---------------------------------------------------------------------------- on a GPU
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.cfg"
    path.write_text(TINY_CFG)
    return load_model(str(path), seed=3)


@pytest.fixture(scope="module")
def parity_file(tiny, tmp_path_factory):
    inputs = [np.random.default_rng(i).standard_normal((BATCH, 3, 16, 16)).astype(np.float32)
              for i in range(2)]
    path = tmp_path_factory.mktemp("parity") / "parity.npz"
    write_reference(path, inputs, reference_outputs(tiny, inputs))
    return path


def _gpu_runtime(name: str):
    runtime = RUNTIMES.get(name)
    ok, why = runtime.available()
    if not ok:
        pytest.skip(f"{name} needs an NVIDIA GPU and its libraries here: {why}")
    return runtime


def _measure(name, artifact, parity_file, tolerance, speed: bool):
    factory = SessionFactory(name, str(artifact), options=RUNTIMES.get(name).options(BATCH))
    return measure(factory, input_shape=(3, 16, 16), batch=BATCH, threads=1, speed=speed,
                   throughput=[1, 100] if speed else "auto",
                   timing=TimingConfig(warmup=3, min_runs=10, min_seconds=0.2),
                   throughput_timing=TimingConfig(warmup=2, min_runs=3, min_seconds=0.1),
                   parity={"path": str(parity_file), "rel_tolerance": tolerance.rel,
                           "why": tolerance.why}, timeout_s=600, with_fingerprint=True)


@pytest.mark.gpu
@pytest.mark.parametrize("name", GPU_RUNTIMES)
def test_gpu_runtime_parity_and_bench(name, tiny, parity_file, tmp_path):
    runtime = _gpu_runtime(name)
    artifact = runtime.build(tiny, tmp_path, threads=1)
    res = _measure(name, artifact, parity_file, runtime.tolerance, speed=True)
    assert res["status"] == "ok", res.get("reason")
    assert res["parity"]["passed"] and res["parity"]["inputs"] == 2
    assert res["latency_ms"]["p50"] > 0
    # batch 100 is over TensorRT's 64 profile: split, not failed
    assert set(res["throughput_ips"]) == {"1", "100"} and not res.get("throughput_errors")
    info = res["session_info"]
    if name == "tensorrt":
        assert info["precision"] == "fp32" and info["gpu_memory_mb"] >= 0
    else:
        assert info["providers"][0] == RUNTIMES.get(name).provider
    assert res["fingerprint"]["gpu"]


@pytest.mark.gpu
def test_tensorrt_fp16_is_reported_as_fp16(tiny, parity_file, tmp_path):
    import dataclasses

    runtime = _gpu_runtime("tensorrt")
    asked = dataclasses.replace(tiny, meta={**tiny.meta, "precision": "fp16"})
    artifact = runtime.build(asked, tmp_path, threads=1)
    res = _measure("tensorrt", artifact, parity_file, tolerance_for("fp16"), speed=False)
    assert res["status"] == "ok", res.get("reason")
    assert res["session_info"]["precision"] == "fp16" and res["parity"]["passed"]


def test_gpu_benchmark_script_says_no_gpu_in_one_line(monkeypatch, capsys, tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"
    spec = importlib.util.spec_from_file_location("gpu_benchmark", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(_cuda, "driver_devices", lambda: (0, "no NVIDIA GPU: test"))
    assert module.main([str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert out == "benchmarks/gpu.py: no NVIDIA GPU: test; nothing measured\n"
    assert not (tmp_path / "out").exists()  # nothing written, nothing installed


def test_fingerprint_reads_gpu_clocks_when_there_is_a_gpu(monkeypatch):
    import subprocess
    import types as pytypes

    from infertune.measure import fingerprint as fp

    line = "0, 1980 MHz, 1980 MHz, 2619 MHz, 2619 MHz, 1755 MHz, 700.00 W, P0, Enabled\n"
    monkeypatch.setattr(fp.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        return pytypes.SimpleNamespace(stdout=line)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(fp, "_static_fingerprint", lambda: {"gpu": [{"name": "H100"}]})
    clocks = fp.fingerprint()["gpu_clocks"]
    assert clocks == [{"index": "0", "clocks.sm": "1980 MHz", "clocks.max.sm": "1980 MHz",
                       "clocks.mem": "2619 MHz", "clocks.max.mem": "2619 MHz",
                       "clocks.applications.graphics": "1755 MHz", "power.limit": "700.00 W",
                       "pstate": "P0", "persistence_mode": "Enabled"}]
    assert "--query-gpu=index,clocks.sm" in calls[0][1]
    monkeypatch.setattr(fp, "_static_fingerprint", lambda: {"gpu": None})
    assert "gpu_clocks" not in fp.fingerprint()  # no GPU: no query
    assert len(calls) == 1


def test_what_needs_a_gpu_is_read_from_each_runtime_and_planned_only_when_available():
    # the search's scheduling (Ray's num_gpus), its plan and Triton's instance kind all read
    # the runtime's own `needs_gpu`: no list of GPU runtime names elsewhere
    from infertune.config import OptimizeConfig
    from infertune.search.executors import needs_gpu
    from infertune.search.run import plan_context

    assert set(GPU_RUNTIMES) >= {"tensorrt", "onnxruntime-cuda", "onnxruntime-tensorrt"}
    assert [n for n in RUNTIMES.names() if needs_gpu(n)] == [
        n for n in RUNTIMES.names() if n in GPU_RUNTIMES]
    assert not needs_gpu(None) and not needs_gpu("no-such-runtime")
    handle = load_model("ref-small")
    info = {"calib_n": 8}
    ctx = plan_context(OptimizeConfig(model="ref-small", out="unused"), handle, info)
    # on this CPU host: no GPU runtime is planned, and none is listed as "unavailable"
    # unless asked for by name
    assert not set(ctx.runtimes) & set(GPU_RUNTIMES) and not ctx.gpu
    assert not set(ctx.unavailable) & set(GPU_RUNTIMES)
    asked = plan_context(OptimizeConfig(model="ref-small", out="unused",
                                        runtimes=("onnxruntime", "tensorrt")),
                         handle, info)
    assert "tensorrt" in asked.unavailable and "tensorrt" not in asked.runtimes


def test_triton_serves_a_gpu_runtime_on_kind_gpu():
    from infertune.search.best import config_pbtxt

    text = config_pbtxt("m", "platform", "tensorrt_plan", {"name": "x", "dims": [3]},
                        [{"name": "y", "dims": [2]}], "KIND_GPU")
    assert "kind: KIND_GPU" in text and "KIND_CPU" not in text
    assert "kind: KIND_CPU" in config_pbtxt("m", "platform", "onnxruntime_onnx",
                                            {"name": "x", "dims": [3]}, [{"name": "y", "dims": [2]}])
