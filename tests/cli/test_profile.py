"""`infertune profile` end to end, called in-process through cli.main(argv) (it returns the exit
code): the zoo's MAC counts, and the one-line errors of a bad model file (the loader's refusals as
the user sees them)."""
from __future__ import annotations

import json

import pytest
import torch

from infertune.cli import main

from tiny_models import TINY_CFG, TINY_FLOATS, tiny_darknet_files  # noqa: E402

pytestmark = pytest.mark.e2e


class Boom:
    """Unpickling this calls print(): the kind of pickle weights_only loading must refuse."""

    def __reduce__(self):
        return (print, ("this would run code",))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tiny_darknet(tmp_path):
    return tiny_darknet_files(tmp_path)


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
