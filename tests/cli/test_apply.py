"""`infertune apply`, end to end through cli.main(argv)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from infertune.cli import main
from infertune.load import load_model

pytestmark = pytest.mark.e2e

CFG = """[net]
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
filters=6
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=5
size=1
stride=1
pad=1
activation=linear

[avgpool]
"""


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "tiny.cfg"
    path.write_text(CFG)
    return path


def test_apply_fold_bn_writes_a_checked_onnx(capsys, tmp_path, cfg):
    out = tmp_path / "out" / "tiny.onnx"
    code, stdout, err = run(capsys, "apply", cfg, "--pass", "fold_bn", "--runtime", "onnxruntime",
                            "--out", out, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert [r["pass"] for r in result["passes"]] == ["fold_bn"]
    assert result["passes"][0]["layers_folded"] == 2 and result["parity"]["passed"]
    assert result["artifact"]["files"] == [str(out)] and out.is_file()
    assert not list(out.parent.glob(".*"))  # no temporary files left next to it
    # The file runs in ONNX Runtime and matches the torch model (same cfg, same seed).
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        ref = load_model(str(cfg)).obj(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_apply_summary_table(capsys, tmp_path, cfg):
    code, stdout, err = run(capsys, "apply", cfg, "--pass", "fold_bn", "--pass", "channels_last",
                            "--out", tmp_path / "m.pt")
    assert code == 0, err
    assert "fold_bn" in stdout and "2 BatchNorm folded" in stdout and "channels_last" in stdout
    assert "torchscript" in stdout and "parity vs the input model" in stdout
    assert (tmp_path / "m.pt").is_file()


def test_apply_onnx_only_pass_converts_and_default_runtime(capsys, tmp_path, cfg):
    code, stdout, err = run(capsys, "apply", cfg, "--pass", "cleanup", "--out", tmp_path / "c.onnx",
                            "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert [r["pass"] for r in result["passes"]] == ["export_onnx", "cleanup"]
    assert result["runtime"] == "onnxruntime" and result["final_format"] == "onnx"
    onnx.checker.check_model(str(tmp_path / "c.onnx"))


def test_fused_onnx_refused_by_openvino(capsys, tmp_path, cfg):
    code, _, err = run(capsys, "apply", cfg, "--pass", "fuse_activation:fold_bn=true", "--pass",
                       "cleanup", "--pass", "fuse_activation", "--runtime", "openvino",
                       "--out", tmp_path / "m.xml")
    assert code == 2 and "only runs on onnxruntime" in err
    assert not (tmp_path / "m.xml").exists()


@pytest.mark.parametrize("argv,message", [
    (["--pass", "fold_bnn"], "unknown pass 'fold_bnn'; did you mean 'fold_bn'?"),
    (["--pass", "merge_siblings:min_grup=3"], "unknown option 'min_grup'; did you mean 'min_group'?"),
    (["--pass", "merge_siblings:min_group=1"], "min_group must be at least 2"),
    (["--pass", "fold_bn:x"], "expected key=value"),
    (["--pass", "fold_bn", "--runtime", "onnxruntme"], "did you mean 'onnxruntime'"),
    (["--pass", "fold_bn", "--out", "m.onnx"], "the torchscript artifact is a .pt file"),
])
def test_bad_arguments_exit_2(capsys, tmp_path, cfg, argv, message):
    out = tmp_path / "x.out"
    if "--out" in argv:
        argv = [str(tmp_path / a) if a == "m.onnx" else a for a in argv]
        out = tmp_path / "m.onnx"
    else:
        argv = [*argv, "--out", out]
    code, _, err = run(capsys, "apply", cfg, *argv)
    assert code == 2 and message in err, err
    assert not out.exists()


def test_apply_with_data_uses_held_out_samples(capsys, tmp_path, cfg):
    from infertune.commands.apply import PARITY_BATCH, PARITY_BATCHES, load_calibration

    calib, held_out = load_calibration(load_model(str(cfg)), "sample", 4, seed=0)
    assert len(calib) == 4 and len(held_out) == PARITY_BATCH * PARITY_BATCHES
    assert calib.x.shape[1:] == (3, 16, 16) and not set(calib.ids) & set(held_out.ids)
    code, stdout, err = run(capsys, "apply", cfg, "--pass", "fold_bn", "--data", "sample",
                            "--calib-size", "4", "--out", tmp_path / "m.pt", "--json")
    assert code == 0, err
    assert json.loads(stdout)["parity"]["inputs"] == PARITY_BATCHES
