"""`infertune list`, end to end through cli.main(argv): passes, runtimes and formats as JSON,
and listing imports no ML framework."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infertune.cli import main

pytestmark = pytest.mark.e2e


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_passes_json(capsys):
    code, stdout, _ = run(capsys, "list", "passes", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(stdout)}
    assert {"fold_bn", "fuse_activation", "merge_siblings", "cleanup", "channels_last"} <= set(rows)
    assert [o["name"] for o in rows["merge_siblings"]["options"]] == ["min_group", "with_activation"]
    assert rows["merge_siblings"]["accepts"] == ["onnx"] and rows["fold_bn"]["options"] == []


def test_list_runtimes_and_formats(capsys):
    code, stdout, _ = run(capsys, "list", "runtimes", "--json")
    runtimes = {r["name"]: r for r in json.loads(stdout)}
    assert code == 0 and runtimes["onnxruntime"]["available"] is True
    assert all("reason" in r for r in runtimes.values())
    code, stdout, _ = run(capsys, "list", "formats", "--json")
    kinds = {(r["kind"], r["name"]) for r in json.loads(stdout)}
    assert ("source", "darknet") in kinds and ("artifact", "openvino") in kinds


def test_list_imports_no_framework():
    code = ("import sys, io, contextlib\nfrom infertune.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    for kind in ('passes', 'runtimes', 'formats'):\n"
            "        main(['list', kind, '--json'])\n"
            "print([m for m in ('torch', 'onnx', 'onnxruntime', 'openvino', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
