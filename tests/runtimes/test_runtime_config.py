"""Runtime configuration options reach the opened session: what ONNX Runtime's SessionOptions
and OpenVINO's compiled model report back, not what was requested; every configuration a
runtime proposes to the search leaves the outputs as they were (parity with the default);
best/run.py opens the artifact with the chosen settings."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from infertune.load import load_model
from infertune.measure.parity import as_arrays, check
from infertune.runtimes import RUNTIMES
from infertune.runtimes.session import SessionFactory
from infertune.search import best
from tiny_models import TINY_CFG


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config")
    cfg = folder / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    return load_model(str(cfg), seed=1), folder


@pytest.fixture(scope="module")
def ort_artifact(tiny):
    handle, folder = tiny
    return RUNTIMES.get("onnxruntime").build(handle, folder / "ort")


@pytest.fixture(scope="module")
def ov_artifact(tiny):
    handle, folder = tiny
    return RUNTIMES.get("openvino").build(handle, folder / "ov")


def _open(runtime, artifact, options, threads=2):
    rt = RUNTIMES.get(runtime)
    return SessionFactory(runtime, str(artifact), options={**rt.options(1), **options}).open(
        threads=threads)


def test_onnxruntime_options_are_read_back_from_the_session(ort_artifact):
    session = _open("onnxruntime", ort_artifact,
                    {"spinning": False, "optimization": "extended",
                     "config": {"session.dynamic_block_base": "4"}}, threads=1)
    try:
        got = session.describe()["session_options"]
    finally:
        session.close()
    assert got["graph_optimization_level"] == "ORT_ENABLE_EXTENDED"
    assert got["intra_op_num_threads"] == 1 and got["execution_mode"] == "ORT_SEQUENTIAL"
    assert got["config_entries"] == {"session.intra_op.allow_spinning": "0",
                                     "session.dynamic_block_base": "4"}
    default = _open("onnxruntime", ort_artifact, {})
    try:
        got = default.describe()["session_options"]
    finally:
        default.close()
    assert got["graph_optimization_level"] == "ORT_ENABLE_ALL" and got["config_entries"] == {}
    assert got["intra_op_num_threads"] == 2


def test_openvino_options_are_read_back_from_the_compiled_model(ov_artifact):
    session = _open("openvino", ov_artifact, {"pinning": False, "threads": 1}, threads=1)
    try:
        info = session.describe()
    finally:
        session.close()
    assert info["enable_cpu_pinning"] is False and info["inference_num_threads"] == 1
    assert info["performance_hint"] == "LATENCY" and info["num_streams"] == 1
    session = _open("openvino", ov_artifact, {"hint": "THROUGHPUT", "streams": 2})
    try:
        info = session.describe()
    finally:
        session.close()
    assert info["performance_hint"] == "THROUGHPUT" and info["num_streams"] == 2
    assert info["infer_requests"] == 2 and info["enable_cpu_pinning"] is True


@pytest.mark.parametrize("objective", ["latency", "throughput"])
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_every_proposed_configuration_keeps_the_outputs(runtime, objective, tiny,
                                                        ort_artifact, ov_artifact):
    """The search times configurations without evaluating their accuracy again: each one a
    runtime proposes must give the default's outputs (batch 1 and a batch split over
    THROUGHPUT's requests), within the runtime's parity tolerance."""
    artifact = ort_artifact if runtime == "onnxruntime" else ov_artifact
    configs = RUNTIMES.get(runtime).configurations(objective, threads=4, max_threads=8)
    assert configs, "no configuration proposed"
    x = np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32)
    inputs = [x[:1], x]
    default = _open(runtime, artifact, {})
    try:
        reference = [as_arrays(default.run(i)) for i in inputs]
    finally:
        default.close()
    tol = RUNTIMES.get(runtime).tolerance.rel
    for options in configs:
        session = _open(runtime, artifact, options, threads=options.get("threads", 2))
        try:
            got = [as_arrays(session.run(i)) for i in inputs]
        finally:
            session.close()
        verdict = check(reference, got, tol)
        assert verdict["passed"], (options, verdict["message"])


def test_configurations_follow_the_objective_and_the_cpu():
    ort, ov = RUNTIMES.get("onnxruntime"), RUNTIMES.get("openvino")
    assert {"threads": 1} in ort.configurations("latency", 2, 2)
    assert {"threads": 1} not in ort.configurations("throughput", 2, 2)
    assert {"threads": 1} not in ort.configurations("latency", 1, 1)
    assert {"threads": 4} in ort.configurations("latency", 2, 4)      # SMT siblings allowed
    assert all(c.get("hint") != "THROUGHPUT" for c in ov.configurations("latency", 2, 2))
    assert {"hint": "THROUGHPUT"} in ov.configurations("throughput", 2, 2)
    assert {"threads": 4, "hyperthreading": True} in ov.configurations("latency", 2, 4)
    assert RUNTIMES.get("torch").configurations("latency", 2, 2) == []


def test_deploy_config_and_triton_settings():
    ort, ov = RUNTIMES.get("onnxruntime"), RUNTIMES.get("openvino")
    cfg = ort.deploy_config({"threads": 2, "spinning": False, "optimization": "extended"})
    assert cfg == {"graph_optimization_level": "ORT_ENABLE_EXTENDED", "intra_op_num_threads": 2,
                   "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL",
                   "config_entries": {"session.intra_op.allow_spinning": "0"}}
    tri = ort.triton_settings({"spinning": False, "optimization": "extended"})
    assert dict(tri.parameters) == {}                    # threads left to the server
    assert tri.blocks == ("optimization { graph { level: 1 } }",)
    assert tri.not_set == ("session.intra_op.allow_spinning=0",)
    assert ort.triton_settings({"threads": 1}).parameters == {"intra_op_thread_count": "1"}
    cfg = ov.deploy_config({"precision": "f32", "batch": 1, "threads": 2, "pinning": False})
    assert cfg == {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 2,
                   "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
    tri = ov.triton_settings({"threads": 1, "pinning": False})
    assert dict(tri.parameters) == {"INFERENCE_NUM_THREADS": "1"}
    assert tri.not_set == ("ENABLE_CPU_PINNING=False",)


def run_on_an_image(script):
    """Runs a written run.py on a random 16x16 image beside it; it must classify it."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(script.parent / "image.png")
    res = subprocess.run([sys.executable, str(script), str(script.parent / "image.png")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("class ")
    return res


@pytest.mark.parametrize("runtime,options,marker", [
    ("onnxruntime", {"threads": 1, "spinning": False}, "'session.intra_op.allow_spinning': '0'"),
    ("openvino", {"precision": "f32", "threads": 1, "pinning": False},
     "'ENABLE_CPU_PINNING': False"),
])
def test_run_py_opens_the_artifact_with_the_chosen_settings(runtime, options, marker, tiny,
                                                            ort_artifact, ov_artifact, tmp_path):
    """run.py carries the configuration literally and runs with it: the script, executed
    with its predict() wrapped, reports the settings its session holds."""
    handle, _ = tiny
    artifact = ort_artifact if runtime == "onnxruntime" else ov_artifact
    for f in artifact.parent.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    report = {"model": {"source": "tiny.cfg"}, "pick": "x",
              "candidates": [{"id": "x", "precision": "fp32"}]}
    s = SimpleNamespace(handle=handle, data_info={"preprocess": "darknet"})
    script = best.run_script(runtime, artifact.name, report, s, options=options,
                             artifact=str(artifact))
    assert marker in script
    probe = ("\nimport json\n"
             "if 'session' in globals():\n"
             "    so = session.get_session_options()\n"
             "    print('SETTINGS', json.dumps({'threads': so.intra_op_num_threads, 'spin': "
             "so.get_session_config_entry('session.intra_op.allow_spinning')}))\n"
             "else:\n"
             "    print('SETTINGS', json.dumps({'threads': int(compiled.get_property("
             "'INFERENCE_NUM_THREADS')), 'pinning': bool(compiled.get_property("
             "'ENABLE_CPU_PINNING'))}))\n")
    (tmp_path / "run.py").write_text(script + probe)
    res = run_on_an_image(tmp_path / "run.py")
    import json

    settings = json.loads(res.stdout.split("SETTINGS", 1)[1])
    if runtime == "onnxruntime":
        assert settings == {"threads": 1, "spin": "0"}
    else:
        assert settings == {"threads": 1, "pinning": False}


@pytest.mark.parametrize("saturates", [True, False])
def test_run_py_of_an_8_bit_ort_int8_pick_warns_where_its_sums_saturate(saturates, tiny,
                                                                        ort_artifact, tmp_path):
    """run.py of an ONNX Runtime INT8 pick with 8-bit weights checks this CPU first: where
    its INT8 sums saturate (forced here by replacing machine.int8_sums_saturate before the
    script runs) it warns on stderr and still classifies; elsewhere it says nothing."""
    handle, _ = tiny
    for f in ort_artifact.parent.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    report = {"model": {"source": "tiny.cfg"}, "pick": "x",
              "candidates": [{"id": "x", "precision": "int8"}]}
    s = SimpleNamespace(handle=handle, data_info={"preprocess": "darknet"})
    script = best.run_script("onnxruntime", ort_artifact.name, report, s,
                             options={"threads": 1}, artifact=str(ort_artifact), weight_bits=8)
    force = ("import infertune.machine\n"
             f"infertune.machine.int8_sums_saturate = lambda *a, **k: {saturates}\n")
    (tmp_path / "run.py").write_text(force + script)
    res = run_on_an_image(tmp_path / "run.py")
    assert ("saturating 16-bit sums" in res.stderr) is saturates
    plain = best.run_script("onnxruntime", ort_artifact.name, report, s, options={"threads": 1},
                            artifact=str(ort_artifact))
    assert "int8_weight_warning" not in plain      # no INT8 weights: nothing to check


def test_the_int8_weight_bits_come_from_the_picks_ort_quantizing_pass():
    fold = {"pass": "fold_bn", "applied": True}
    int8 = {"pass": "int8_static", "applied": True, "weight_bits": 7}
    assert best.ort_int8_weight_bits({"runtime": "onnxruntime", "passes": [fold, int8]}) == 7
    assert best.ort_int8_weight_bits({"runtime": "onnxruntime", "passes": [fold]}) is None
    assert best.ort_int8_weight_bits(
        {"runtime": "onnxruntime", "passes": [fold, {**int8, "applied": False}]}) is None
    # OpenVINO runs the same QDQ model on its own kernels: not claimed either way
    assert best.ort_int8_weight_bits({"runtime": "openvino", "passes": [fold, int8]}) is None
