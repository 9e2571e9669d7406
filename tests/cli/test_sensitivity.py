"""`infertune sensitivity` end to end on the trained reference model and the sample set:
the table, --json (strict JSON on stdout), --out written atomically, bad input messages."""
from __future__ import annotations

import json

import pytest

from infertune.cli import main

pytestmark = pytest.mark.e2e


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def strict(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_json_and_out_file(capsys, tmp_path):
    target = tmp_path / "ranking.json"
    code, out, err = run(capsys, "sensitivity", "ref-small", "--data", "sample:val",
                         "--limit", "40", "--json", "--out", target)
    assert code == 0, err
    result = strict(out)
    assert result["data"] == {**result["data"], "calibration_samples": 20, "eval_samples": 20}
    layers = result["layers"]
    assert [r["rank"] for r in layers] == list(range(1, len(layers) + 1)) and len(layers) == 4
    assert all(r["op"] == "Conv" and r["layer"].endswith("/Conv") for r in layers)
    assert [r["sqnr_db"] for r in layers] == sorted(r["sqnr_db"] for r in layers)
    saved = strict(target.read_text())
    assert saved["layers"] == layers and result["out"] == str(target)
    assert not [p for p in tmp_path.iterdir() if p.name != "ranking.json"]  # no temp files


def test_table(capsys):
    code, out, _ = run(capsys, "sensitivity", "ref-small", "--data", "sample", "--limit", "24")
    assert code == 0
    assert "INT8 sensitivity per layer" in out and "(every layer quantized)" in out
    assert "/layers.0/conv/Conv" in out


def test_bad_method_and_data(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects it before any work
        main(["sensitivity", "ref-small", "--data", "sample", "--method", "mse"])
    assert exit_info.value.code == 2 and "invalid choice: 'mse'" in capsys.readouterr().err
    code, _, err = run(capsys, "sensitivity", "ref-small", "--data", tmp_path / "missing")
    assert code == 2 and "no such file or directory" in err
