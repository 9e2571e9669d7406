"""`infertune export` end to end, called in-process through cli.main(argv): a Darknet model to
ONNX that runs like the original, inputs never modified, a bad format is a usage error."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from infertune.cli import main
from infertune.load import load_model

from tiny_models import tiny_darknet_files  # noqa: E402

pytestmark = pytest.mark.e2e


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_darknet(tmp_path):
    return tiny_darknet_files(tmp_path)


def test_export_darknet_to_onnx_and_run(capsys, tiny_darknet, tmp_path):
    cfg, weights = tiny_darknet
    before = sha(cfg), sha(weights)
    out_path = tmp_path / "out" / "tiny.onnx"
    code, out, err = run(capsys, "export", f"{cfg}:{weights}", "--out", str(out_path), "--json")
    assert code == 0, err
    assert json.loads(out)["path"] == str(out_path)
    assert (sha(cfg), sha(weights)) == before  # inputs never modified
    session = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.inference_mode():
        want = load_model(f"{cfg}:{weights}").obj(torch.from_numpy(x)).numpy()
    assert got.shape == (3, 5)
    np.testing.assert_allclose(got, want, atol=1e-5)  # float32 softmax outputs in [0, 1]


def test_bad_export_format_is_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["export", "resnet18", "--format", "tflite", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
