"""The trained reference models (ref-small, ref-large): shipped weights, recorded accuracy,
size ratio, and that retraining reproduces the record.

Tolerances, and why:
* Re-evaluating the shipped weights on `sample:val`: same weights, same preprocessed digits,
  so the top-1 can only move if float32 summation order flips an arg-max; the logits' margins
  are far larger than that rounding, so we expect equality and allow 0.5 point.
* Retraining: the same machine type and thread count give bit-identical weights (train.py),
  but another CPU (AVX2 vs AVX-512 kernels) changes the last bits of early updates, which
  training amplifies into different weights — like another seed. Seeds 0-3 of ref-small gave
  98.3-99.1% val top-1 here, so the retrain must land within ±1.0 point of the record (and
  above the 97% floor the issue sets); the weights are not compared bit for bit.
"""
from __future__ import annotations

import hashlib
import json

import pytest

from infertune.cli import main
from infertune.load import load_model
from infertune.zoo import ZOO
from infertune.zoo.reference import WEIGHTS_DIR, read_record

REFS = ("ref-small", "ref-large")
RETRAIN_TOLERANCE = 0.010  # ±1.0 point of top-1 (see the module docstring)
FLOOR = {"ref-small": 0.97, "ref-large": 0.98}


def run_json(capsys, *argv):
    code = main([*map(str, argv), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", REFS)
def test_shipped_files_and_trained_weights_load(name):
    entry = ZOO.get(name)
    assert entry.family == "reference" and entry.num_classes == 10
    record = read_record(entry)
    assert record["val"]["top1"] >= FLOOR[name] and record["val"]["n"] == 1000
    assert record["val"]["data"] == "sample:val" and not record["stopped_early"]
    cfg = (WEIGHTS_DIR / f"{name}.cfg").read_text()
    assert cfg == entry.cfg_text(*entry.input_size, entry.num_classes)  # same network
    handle = load_model(name)
    assert handle.meta["weights"] == "trained"
    assert handle.meta["recorded_accuracy"]["top1"] == record["val"]["top1"]
    assert handle.input_spec.chw == (3, 32, 32)
    random = load_model(f"{WEIGHTS_DIR / name}.cfg")  # same cfg, random weights
    trained_w = handle.obj.layers[0].conv.weight
    assert not trained_w.equal(random.obj.layers[0].conv.weight)


@pytest.mark.parametrize("name", REFS)
def test_recorded_accuracy_is_reproduced_by_eval(capsys, name):
    record = read_record(ZOO.get(name))
    result = run_json(capsys, "eval", name, "--data", "sample:val")
    acc = result["accuracy"]
    assert acc["n"] == record["val"]["n"]
    assert acc["top1"] == pytest.approx(record["val"]["top1"], abs=0.005)
    assert acc["top1_ci"][0] < acc["top1"] < acc["top1_ci"][1] or acc["top1"] == 1.0
    assert result["model"]["recorded_accuracy"]["top1"] == record["val"]["top1"]


def test_shipped_cfg_and_weights_load_as_darknet_files(capsys):
    """The shipped pair is an ordinary Darknet model: the same accuracy through the importer."""
    small = f"{WEIGHTS_DIR / 'ref-small.cfg'}:{WEIGHTS_DIR / 'ref-small.weights'}"
    result = run_json(capsys, "eval", small, "--data", "sample:val", "--reference", "ref-small")
    assert result["fidelity"]["max_abs"] == 0.0
    assert result["accuracy"]["top1"] == read_record(ZOO.get("ref-small"))["val"]["top1"]


def test_large_has_ten_times_the_macs(capsys):
    small, large = (run_json(capsys, "profile", name) for name in REFS)
    assert large["macs"] >= 10 * small["macs"]
    for name, prof in zip(REFS, (small, large)):
        record = read_record(ZOO.get(name))
        assert (record["macs"], record["params"]) == (prof["macs"], prof["params"])


def test_zoo_listing_shows_trained_entries(capsys):
    rows = run_json(capsys, "zoo", "ref-small", "darknet19")
    assert [r["name"] for r in rows] == ["ref-small", "darknet19"]
    assert rows[0]["weights"] == "trained" and rows[0]["recorded_top1"] >= 0.97
    assert rows[1]["weights"] == "random" and rows[1]["recorded_top1"] is None


def test_a_trained_head_cannot_change_its_class_count(capsys):
    assert main(["profile", "ref-small", "--num-classes", "5"]) == 2
    assert "trained for 10 classes" in capsys.readouterr().err


def test_train_refuses_other_entries(capsys):
    assert main(["zoo", "train", "resnet18"]) == 2
    assert "only the reference models can be trained" in capsys.readouterr().err


def retrain_and_compare(capsys, tmp_path, name):
    shipped = {p.name: sha(p) for p in WEIGHTS_DIR.iterdir()}
    out = tmp_path / "out"
    record = run_json(capsys, "zoo", "train", name, "--out", out)
    assert {p.name: sha(p) for p in WEIGHTS_DIR.iterdir()} == shipped  # never overwritten
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.{s}" for s in ("cfg", "json", "weights")]
    assert json.loads((out / f"{name}.json").read_text())["weights_sha256"] == sha(out / f"{name}.weights")
    shipped_record = read_record(ZOO.get(name))
    assert record["epochs_done"] == shipped_record["epochs_done"] and not record["stopped_early"]
    assert record["macs"] == shipped_record["macs"]
    top1 = record["val"]["top1"]
    assert abs(top1 - shipped_record["val"]["top1"]) <= RETRAIN_TOLERANCE + 1e-9
    assert top1 >= FLOOR[name]
    return record


def test_retraining_ref_small_reproduces_its_record(capsys, tmp_path):
    """~20-50 s on 2 cores (20 epochs on 4,000 digits)."""
    retrain_and_compare(capsys, tmp_path, "ref-small")


@pytest.mark.slow
def test_retraining_ref_large_reproduces_its_record(capsys, tmp_path):
    """~60-120 s on 2 cores: slow, so `-m "not slow"` leaves it out. A shortened retrain
    would prove nothing about the shipped record, so the full recipe is run."""
    retrain_and_compare(capsys, tmp_path, "ref-large")
