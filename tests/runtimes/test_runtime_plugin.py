"""A runtime is one plugin: a Runtime class defined entirely in this test module (ONNX Runtime
under another name, with its own run.py loader, Triton backend, planning prior and rank) shows
up in `infertune list`, in `bench --runtime all`, in the fused stage's plan, in best/run.py,
in `infertune triton`, in the measuring child's opener lookup and in per-layer timing,
without any other module naming it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from infertune.commands.bench import resolve_runtimes
from infertune.cli import main
from infertune.errors import ConfigError
from infertune.commands.listing import list_items
from infertune.load import load_model
from infertune.runtimes.session import OPENERS, SessionFactory
from infertune.runtimes import RUNTIMES, Loader, Runtime, TritonBackend
from infertune.runtimes.base import onnx_artifact
from infertune.runtimes.layer_time import layer_times
from infertune.runtimes.onnxruntime import OrtSession, ort_layer_rows
from infertune.search import best, space
from infertune.search.candidate import Step
from infertune.search.ids import candidate_id
from tiny_models import TINY_CFG

NAME = "plugin_ort"
# Distinct from ONNX Runtime's own loader, so that run.py shows which one it got.
LOADER_CODE = ("import onnxruntime\n"
               "session = onnxruntime.InferenceSession(MODEL)  # plugin_ort's loader\n"
               "predict = lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]\n")


class PluginOrt(Runtime):
    """Test-only: the ONNX export, opened by ONNX Runtime, under the name plugin_ort."""

    name = NAME
    accepts = ("torch", "onnx")
    requires = ("onnxruntime", "onnx")
    description = "test-only runtime: ONNX Runtime under another name"
    artifact_files = ".onnx"
    artifact_note = "the shared ONNX export (test plugin)"
    loader = Loader("onnxruntime", LOADER_CODE)
    triton = TritonBackend("platform", "onnxruntime_onnx", "model.onnx")
    prior_speedups = {"fp32": 1.3}
    rank = 45  # between onnxruntime (40) and openvino (50)
    times_layers = True

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        return onnx_artifact(handle, workdir, input_size)

    def time_layers(self, artifact, x, threads, runs):
        return ort_layer_rows(artifact, x, threads, runs), "ONNX Runtime's profiler (plugin)"


def open_plugin(artifact: str, options) -> OrtSession:
    return OrtSession(artifact, options)


@pytest.fixture
def plugin(monkeypatch):
    """PluginOrt registered for one test only (the registries have no public removal; a
    permanent entry would change other tests' runtime lists)."""
    runtime = PluginOrt()
    monkeypatch.setitem(RUNTIMES._items, NAME, runtime)
    monkeypatch.setitem(OPENERS._items, NAME, open_plugin)
    return runtime


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    cfg = folder / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    handle = load_model(str(cfg), seed=1)
    return handle, PluginOrt().build(handle, folder)


def test_listed_with_its_artifact_and_benched_by_rank(plugin, capsys):
    row = next(r for r in list_items("runtimes") if r["name"] == NAME)
    assert (row["artifact"], row["available"]) == (".onnx", True)
    assert row["artifact_note"] == PluginOrt.artifact_note
    formats = [r for r in list_items("formats") if r["kind"] == "artifact"]
    assert [r["name"] for r in formats] == ["torch", "torchscript", "compile", "onnxruntime",
                                            NAME, "openvino", "tensorrt", "onnxruntime-cuda",
                                            "onnxruntime-tensorrt"]
    assert main(["list", "runtimes", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert NAME in [r["name"] for r in listed]
    assert resolve_runtimes("all").index(NAME) == resolve_runtimes("all").index("onnxruntime") + 1


def _ctx(model_format, runtimes):
    return space.PlanContext(model_key={"source": "tiny.cfg"}, model_format=model_format,
                             runtimes=runtimes, registered_passes=frozenset({"fold_bn"}))


def test_planned_by_the_fused_stage_when_requested(plugin):
    fold = Step("fold_bn", {}).to_json()
    for model_format in ("torch", "onnx"):
        cands = space.fused(_ctx(model_format, ("onnxruntime", NAME, "openvino")))
        assert [c.runtime for c in cands] == ["onnxruntime", NAME, "openvino"]
        mine = cands[1]
        assert mine.id == candidate_id({"source": "tiny.cfg"}, [fold], NAME)
        assert mine.plan.prior_speedup == 1.3 and mine.status.value == "planned"
    assert NAME not in [c.runtime for c in space.fused(_ctx("torch", ("onnxruntime",)))]


def test_run_py_uses_its_loader(plugin, tiny, tmp_path):
    from PIL import Image

    handle, artifact = tiny
    report = {"model": {"source": "tiny.cfg"}, "pick": "x",
              "candidates": [{"id": "x", "precision": "fp32"}]}
    s = SimpleNamespace(handle=handle, data_info={"preprocess": "darknet"})
    script = best.run_script(NAME, artifact.name, report, s)
    assert LOADER_CODE in script and "needs onnxruntime" in script
    (tmp_path / artifact.name).write_bytes(artifact.read_bytes())
    (tmp_path / "run.py").write_text(script)
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "image.png")
    res = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "image.png")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    # The same pixels through the float model: run.py's class (darknet preset: exact resize
    # of a 16x16 image to 16x16, /255) must be its argmax.
    x = torch.from_numpy(pixels.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
    with torch.no_grad():
        expected = int(handle.obj.eval()(x).reshape(1, -1).argmax())
    assert res.stdout.split()[:2] == ["class", str(expected)]


def _run_dir(tmp_path, runtime, artifact):
    best_dir = tmp_path / "run" / "best"
    best_dir.mkdir(parents=True)
    (best_dir / artifact.name).write_bytes(artifact.read_bytes())
    card = {"runtime": runtime, "source": "tiny.cfg", "artifact": artifact.name,
            "load": {"input": {"shape": [1, 3, 16, 16]}}}
    (best_dir / "model_card.json").write_text(json.dumps(card))
    return tmp_path / "run"


def test_triton_serves_it_with_its_backend(plugin, tiny, tmp_path):
    _, artifact = tiny
    result = best.triton(_run_dir(tmp_path, NAME, artifact), tmp_path / "repo")
    assert result["backend"] == "onnxruntime_onnx"
    config = (tmp_path / "repo" / "tiny" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config
    assert (tmp_path / "repo" / "tiny" / "1" / "model.onnx").read_bytes() == artifact.read_bytes()


def test_triton_refuses_it_without_a_backend(plugin, tiny, tmp_path, monkeypatch):
    _, artifact = tiny
    monkeypatch.setattr(plugin, "triton", None)
    with pytest.raises(ConfigError, match="plugin_ort, which has no Triton backend; Triton "
                                          "serves onnxruntime, tensorrt, openvino, torchscript picks"):
        best.triton(_run_dir(tmp_path, NAME, artifact), tmp_path / "repo")


def test_opened_and_timed_through_the_registry(plugin, tiny):
    handle, artifact = tiny
    # The measuring child imports the module that defines the Runtime class: this one.
    assert SessionFactory(NAME, str(artifact)).to_dict()["module"] == __name__
    session = SessionFactory(NAME, str(artifact)).open(threads=1)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    try:
        got = np.asarray(session.run(x))
    finally:
        session.close()
    with torch.no_grad():
        want = handle.obj.eval()(torch.from_numpy(x)).numpy()
    # FP32 ONNX Runtime against eager torch: rounding only (runtimes/base.py FP32_REORDERED).
    assert np.abs(got.reshape(want.shape) - want).max() <= 1e-3 * np.abs(want).max()
    result = layer_times(NAME, artifact, (3, 16, 16), threads=1, runs=2)
    assert result["method"] == "ONNX Runtime's profiler (plugin)" and result["layers"]
    assert NAME in RUNTIMES.layer_timed()
