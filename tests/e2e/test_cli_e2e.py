"""The CLI end to end, called in-process through cli.main(argv) (it returns the exit code)."""
from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import torch

from infertune.cli import main

from tiny_models import TINY_CFG  # noqa: E402

# Floats in a .weights file for TINY_CFG (FORMAT.md §1.3), counted by hand:
# conv1: 8 biases + 3×8 BN arrays + 8·3·3·3 weights = 8 + 24 + 216 = 248
# conv2: 5 biases + 5·8·1·1 weights = 45
TINY_FLOATS = 248 + 45


class Boom:
    """Unpickling this calls print(): the kind of pickle weights_only loading must refuse."""

    def __reduce__(self):
        return (print, ("this would run code",))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_darknet(tmp_path):
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = tmp_path / "tiny.weights"
    rng = np.random.default_rng(0)
    header = struct.pack("<iiiQ", 0, 2, 0, 0)
    weights.write_bytes(header + rng.standard_normal(TINY_FLOATS).astype("<f4").tobytes())
    # BN variances must be positive: they are the 3rd BN array of conv1 (offset 8+8+8).
    data = np.frombuffer(weights.read_bytes()[20:], "<f4").copy()
    data[24:32] = np.abs(data[24:32]) + 0.5
    weights.write_bytes(header + data.tobytes())
    return cfg, weights


def test_profile_darknet19_448_json(capsys):
    code, out, err = run(capsys, "profile", "darknet19_448", "--json")
    assert code == 0, err
    result = json.loads(out)  # stdout holds only the JSON
    # 22.33 Bn ops published by pjreddie.com for darknet19_448 = 2 × MACs (FORMAT.md §6).
    assert result["macs"] == 11_163_959_296
    assert result["params"] == 20_842_376
    assert result["output_shape"] == [1000]
    assert result["input_shape"] == [3, 448, 448]
    conv_rows = [r for r in result["layers"] if r["type"] == "convolutional"]
    assert len(conv_rows) == 19
    assert sum(r["macs"] for r in result["layers"]) == result["macs"]


def test_profile_darknet19_at_224(capsys):
    code, out, _ = run(capsys, "profile", "darknet19", "--input-size", "224x224", "--json")
    assert code == 0
    assert json.loads(out)["macs"] * 2 == pytest.approx(5.58e9, rel=1e-3)  # YOLO9000 paper


def test_profile_table_goes_to_stdout_without_json(capsys, tiny_darknet):
    cfg, weights = tiny_darknet
    code, out, _ = run(capsys, "profile", f"{cfg}:{weights}")
    assert code == 0
    assert "convolutional" in out and "total" in out


def test_export_darknet_to_onnx_and_run(capsys, tiny_darknet, tmp_path):
    import onnxruntime as ort

    from infertune.load import load_model

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


def error_of(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("infertune: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_truncated_weights(capsys, tiny_darknet):
    cfg, weights = tiny_darknet
    weights.write_bytes(weights.read_bytes()[:-40])
    line = error_of(capsys, "profile", f"{cfg}:{weights}")
    assert "tiny.weights" in line and str(TINY_FLOATS) in line and str(TINY_FLOATS - 10) in line


def test_oversized_weights(capsys, tiny_darknet):
    cfg, weights = tiny_darknet
    weights.write_bytes(weights.read_bytes() + b"\x00" * 8)
    line = error_of(capsys, "profile", f"{cfg}:{weights}")
    assert str(TINY_FLOATS) in line and str(TINY_FLOATS + 2) in line


def test_unknown_section(capsys, tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(TINY_CFG.replace("[maxpool]", "[maxpoool]"))
    line = error_of(capsys, "profile", str(cfg))
    assert "bad.cfg:14" in line and "maxpoool" in line


def test_unknown_key(capsys, tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(TINY_CFG.replace("filters=5", "filterz=5"))
    line = error_of(capsys, "profile", str(cfg))
    assert "bad.cfg:19" in line and "filterz" in line


def test_directory_as_model(capsys, tmp_path):
    assert "is a directory" in error_of(capsys, "profile", str(tmp_path))


def test_corrupt_onnx(capsys, tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"not an onnx file at all")
    assert "corrupt.onnx" in error_of(capsys, "profile", str(path))


def test_non_weights_only_pickle(capsys, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Boom()}, path)
    line = error_of(capsys, "profile", str(path), "--arch", "resnet18")
    assert "evil.pt" in line and "weights-only" in line


def test_user_code_refused_without_trust(capsys):
    assert "--trust-code" in error_of(capsys, "profile", "os.path:join")


def test_bad_export_format_is_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["export", "resnet18", "--format", "tflite", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
