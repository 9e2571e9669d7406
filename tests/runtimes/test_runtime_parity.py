"""Every registered runtime reproduces the float model's outputs on a tiny Darknet model,
checked the way bench checks it: the artifact is built here, reloaded in a fresh measuring
child, run on seeded inputs and compared with the reference within the runtime's named
tolerance. Plus the traps SPEC lists: OpenVINO's silent BF16, and a TorchScript file that
does not load back. No timing is asserted anywhere."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from infertune.commands.bench import build_one
from infertune.measure.inprocess import reference_outputs
from infertune.load import load_model
from infertune.measure import SessionFactory, measure
from infertune.measure.parity import write_reference
from infertune.runtimes import RUNTIMES

# conv-BN-leaky, stride-2 maxpool, conv-BN-leaky, 1x1 linear conv, global average: the
# Darknet layer kinds of Darknet19, small enough for every runtime to build in seconds.
TINY_CFG = """[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=10
size=1
stride=1
pad=1
activation=linear

[avgpool]
"""
BATCH = 2
# torch.compile needs ~10-20 s to compile even a tiny model on a 2-core machine.
SLOW = {"compile"}


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


# Runtimes that need hardware this machine may lack (an NVIDIA GPU: `needs_gpu`): the only
# ones that may skip. Every CPU runtime rests on hard dependencies (torch, onnxruntime,
# openvino) and a C++ compiler (compile): unavailable there is a broken install, and fails.
def _available(name: str):
    ok, why = RUNTIMES.get(name).available()
    if not ok and RUNTIMES.get(name).needs_gpu:
        pytest.skip(f"{name} unavailable here: {why}")
    assert ok, f"{name} must run on every machine infertune supports, but: {why}"
    return RUNTIMES.get(name)


def _check_in_child(name, artifact, parity_file, tolerance, **options):
    factory = SessionFactory(name, str(artifact), options={**RUNTIMES.get(name).options(BATCH),
                                                          **options})
    return measure(factory, input_shape=(3, 16, 16), batch=BATCH, threads=1, speed=False,
                   parity={"path": str(parity_file), "rel_tolerance": tolerance.rel,
                           "why": tolerance.why}, timeout_s=240, with_fingerprint=False)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in RUNTIMES.names()])
def test_runtime_reproduces_the_float_model(name, tiny, parity_file, tmp_path):
    runtime = _available(name)
    assert runtime.tolerance.why and 0 < runtime.tolerance.rel <= 1e-3
    artifact = runtime.build(tiny, tmp_path, threads=1)
    res = _check_in_child(name, artifact, parity_file, runtime.tolerance)
    assert res["status"] == "ok", res.get("reason")
    parity = res["parity"]
    assert parity["passed"] and parity["inputs"] == 2
    assert parity["max_abs_diff"] <= parity["tolerance"] and parity["cosine"] > 0.9999
    assert res["latency_ms"] is None  # a check-only job times nothing
    assert res["artifact_mb"] > 0


def test_unavailable_runtime_says_why_without_importing_it():
    for name in RUNTIMES.names():
        ok, why = RUNTIMES.get(name).available()
        assert ok or (isinstance(why, str) and why)


def test_a_failed_parity_check_is_a_failed_result_with_the_numbers(tiny, parity_file, tmp_path):
    runtime = _available("onnxruntime")
    artifact = runtime.build(tiny, tmp_path, threads=1)
    # An impossible tolerance stands in for a runtime that computes something else.
    strict = type(runtime.tolerance)(rel=1e-30, why="test")
    res = _check_in_child("onnxruntime", artifact, parity_file, strict)
    assert res["status"] == "failed" and "phase 'parity'" in res["reason"]
    assert "max |diff|" in res["reason"] and res["parity"]["passed"] is False
    assert res["parity"]["max_abs_diff"] is not None and res["parity"]["cosine"] is not None


# --------------------------------------------------------------------------- OpenVINO precision


def test_openvino_requests_fp32_explicitly():
    from infertune.runtimes.openvino import compile_config

    one = compile_config({"threads": 2, "batch": 1, "precision": "f32"})
    assert one == {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 2,
                   "INFERENCE_PRECISION_HINT": "f32"}
    assert compile_config({"batch": 8})["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert compile_config({})["INFERENCE_PRECISION_HINT"] == "f32"  # the default is FP32
    assert "INFERENCE_PRECISION_HINT" not in compile_config({"precision": "default"})
    assert RUNTIMES.get("openvino").options(1)["precision"] == "f32"


def test_openvino_reports_the_precision_that_ran(tiny, tmp_path):
    _available("openvino")
    import openvino as ov

    from infertune.runtimes.openvino import OpenVinoSession

    xml = RUNTIMES.get("openvino").build(tiny, tmp_path)
    fp32 = OpenVinoSession(str(xml), {"threads": 1, "batch": 1, "precision": "f32"}).describe()
    assert fp32["requested_precision"] == "f32" and fp32["inference_precision"] == "f32"
    assert "bf16" not in fp32["runtime_precisions"] and fp32["runtime_precisions"].get("f32")
    plugin = OpenVinoSession(str(xml), {"threads": 1, "batch": 1, "precision": "default"})
    chosen = plugin.describe()["inference_precision"]
    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        # The trap itself: left to choose, the plugin picks BF16 here, and says so.
        assert chosen == "bf16" and plugin.describe()["runtime_precisions"].get("bf16")
    else:
        assert chosen == "f32"


def test_bench_warns_when_the_precision_that_ran_is_not_the_one_requested():
    from infertune.commands.bench import _annotate
    from infertune.commands.bench_results import empty_row

    row = empty_row("openvino", 1, 2, "ok")
    row["session_info"] = {"requested_precision": "f32", "inference_precision": "bf16"}
    out = _annotate(row, {"seconds": 1.0, "artifact": "/w/openvino/model.xml"})
    assert out["warnings"] == ["requested f32 but the runtime reports bf16"]


# --------------------------------------------------------------------------- TorchScript reload


def test_torchscript_file_that_does_not_load_back_is_a_failed_result(tiny, tmp_path, monkeypatch):
    _available("torchscript")

    def broken_load(*args, **kwargs):  # simulates a saved file TorchScript cannot read
        raise RuntimeError("required keyword attribute 'value' is undefined")

    monkeypatch.setattr(torch.jit, "load", broken_load)
    out = build_one("torchscript", tiny, tmp_path, threads=1)
    assert out["status"] == "failed" and out["artifact"] is None
    assert "does not load back" in out["reason"] and "'value' is undefined" in out["reason"]


def test_torchscript_says_whether_optimize_for_inference_was_kept(tiny, tmp_path):
    _available("torchscript")
    from infertune.runtimes.session import SessionFactory as Factory

    artifact = RUNTIMES.get("torchscript").build(tiny, tmp_path, threads=1)
    info = Factory("torchscript", str(artifact)).open(threads=1).describe()
    assert info["frozen"] is True
    # torch 2.13 cannot reload optimize_for_inference's MKL-DNN constants: the fallback to
    # the frozen module must then be stated, with the reason.
    assert info["optimize_for_inference"] is True or "does not load back" in info["fallback"]


def test_torchscript_file_corrupted_after_the_build_fails_in_the_child(tiny, parity_file,
                                                                       tmp_path):
    runtime = _available("torchscript")
    artifact = runtime.build(tiny, tmp_path, threads=1)
    artifact.write_bytes(artifact.read_bytes()[:200])  # truncated on disk
    res = _check_in_child("torchscript", artifact, parity_file, runtime.tolerance)
    assert res["status"] == "failed" and "phase 'open'" in res["reason"]
