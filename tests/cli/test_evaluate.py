"""`infertune eval` end to end, on a model whose answers are known by construction.

The model is a Darknet cfg: one 1×1 linear conv (3 → 3 channels, with bias) then a global
average pool, so on an image whose channels are constant planes m (3 values) it outputs
exactly W·m + b. The .npz data hold such images with labels chosen so that the model is
right on exactly 48 of 60: every accuracy figure is known in advance, and fidelity to a
perturbed copy (other W, b) can be computed here in float64 from the same formula.

Tolerances: the model runs in float32, the expectations are float64; a 1×1 conv and a mean
of 16 equal values lose at most a few float32 ulps (~1e-7 relative), so 1e-5 is ample and
any real error (wrong channel order, bias, pooling) is O(0.1) or more.
"""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from infertune.cli import main

pytestmark = pytest.mark.e2e

CFG = """[net]
width=4
height=4
channels=3

[convolutional]
filters=3
size=1
stride=1
pad=1
activation=linear

[avgpool]
"""
N, N_RIGHT = 60, 48
W_ORIG, B_ORIG = np.eye(3), np.zeros(3)
W_PERT, B_PERT = np.diag([1.0, 1.0, 0.6]), np.array([0.0, 0.05, 0.1])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def strict_json(text: str):
    """json.loads that refuses Infinity/NaN, as strict parsers (JavaScript, Go) do."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def write_model(folder, name: str, w: np.ndarray, b: np.ndarray) -> str:
    """cfg + .weights (header, then biases, then weights [out][in]); returns CFG:WEIGHTS."""
    cfg, weights = folder / f"{name}.cfg", folder / f"{name}.weights"
    cfg.write_text(CFG)
    floats = np.concatenate([b, w.reshape(-1)]).astype("<f4")
    weights.write_bytes(struct.pack("<iiiQ", 0, 2, 0, 0) + floats.tobytes())
    return f"{cfg}:{weights}"


def channel_means() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.0, 1.0, (N, 3))


def logits(m: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Through float32, as the .npz stores the planes: the model sees exactly these values.
    return m.astype(np.float32).astype(np.float64) @ w.T + b


@pytest.fixture
def setup(tmp_path):
    """(original model, perturbed model, labelled .npz, labels, channel means)."""
    m = channel_means()
    pred = logits(m, W_ORIG, B_ORIG).argmax(1)
    y = pred.copy()
    y[N_RIGHT:] = (pred[N_RIGHT:] + 1) % 3  # the last 12 are wrong, by construction
    x = np.broadcast_to(m[:, :, None, None], (N, 3, 4, 4)).astype(np.float32)
    npz = tmp_path / "data.npz"
    np.savez(npz, x=x, y=y)
    return (write_model(tmp_path, "orig", W_ORIG, B_ORIG),
            write_model(tmp_path, "pert", W_PERT, B_PERT), npz, y, m)


def test_accuracy_known_by_construction(capsys, setup):
    model, _, npz, y, m = setup
    code, out, err = run(capsys, "eval", model, "--data", npz, "--json")
    assert code == 0, err
    result = strict_json(out)  # stdout holds only the JSON
    acc = result["accuracy"]
    assert acc["n"] == N and acc["top1"] == N_RIGHT / N
    assert acc["top5"] == 1.0 and acc["top5_k"] == 3  # 3 classes: top-k with k = 3
    for key in ("top1", "top5", "precision_macro", "recall_macro", "f1_macro",
                "precision_weighted", "recall_weighted", "f1_weighted"):
        lo, hi = acc[f"{key}_ci"]
        assert 0.0 <= lo <= acc[key] <= hi <= 1.0, key
    pred = logits(m, W_ORIG, B_ORIG).argmax(1)
    expected = np.zeros((3, 3), dtype=int)
    np.add.at(expected, (y, pred), 1)
    assert acc["confusion"] == expected.tolist()
    assert [r["support"] for r in acc["per_class"]] == np.bincount(y, minlength=3).tolist()
    assert result["fidelity"] is None and result["comparison"] is None
    assert result["preprocess"]["from"] == "model" and result["data"]["n"] == N
    assert result["model"]["num_classes"] == 3 and result["threads"] >= 1


def test_fidelity_to_itself_is_perfect_and_strict_json(capsys, setup):
    model, _, npz, _, _ = setup
    code, out, err = run(capsys, "eval", model, "--data", npz, "--reference", model, "--json")
    assert code == 0, err
    result = strict_json(out)
    fid, cmp = result["fidelity"], result["comparison"]
    assert fid["top1_agreement"] == 1.0 and fid["max_abs"] == 0.0
    assert fid["cosine"] == pytest.approx(1.0, abs=1e-12)
    # Identical outputs: SQNR is +inf, written as null plus a marker (strict JSON has no inf).
    assert fid["sqnr_db"] is None and fid["sqnr_db_nonfinite"] == "inf"
    assert cmp["delta"] == 0.0 and cmp["n01"] == cmp["n10"] == 0
    # No disagreement still leaves an interval (Tango's score interval): ±z²/(n + z²).
    z2 = 1.959963984540054 ** 2
    n = cmp["n"]
    assert cmp["delta_ci"] == pytest.approx([-z2 / (n + z2), z2 / (n + z2)], rel=1e-6)


def test_fidelity_and_paired_delta_against_a_perturbed_copy(capsys, setup):
    model, perturbed, npz, y, m = setup
    code, out, err = run(capsys, "eval", perturbed, "--data", npz, "--reference", model, "--json")
    assert code == 0, err
    result = strict_json(out)
    ref, cand = logits(m, W_ORIG, B_ORIG), logits(m, W_PERT, B_PERT)
    agree = (ref.argmax(1) == cand.argmax(1)).mean()
    assert 0.5 < agree < 1.0  # the perturbation flips some, not all, predictions
    cos = (ref * cand).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(cand, axis=1)
    sqnr = 10 * np.log10((ref ** 2).sum() / ((ref - cand) ** 2).sum())
    fid = result["fidelity"]
    assert fid["top1_agreement"] == agree
    assert fid["cosine"] == pytest.approx(cos.mean(), rel=1e-5)
    assert fid["sqnr_db"] == pytest.approx(sqnr, rel=1e-5)
    assert fid["max_abs"] == pytest.approx(np.abs(ref - cand).max(), rel=1e-5)
    cmp = result["comparison"]
    right_ref, right_cand = ref.argmax(1) == y, cand.argmax(1) == y
    assert cmp["baseline"] == right_ref.mean() and cmp["candidate"] == right_cand.mean()
    assert cmp["delta"] == pytest.approx(right_cand.mean() - right_ref.mean(), abs=1e-12)
    assert cmp["delta_ci"][0] <= cmp["delta"] <= cmp["delta_ci"][1]
    assert result["accuracy"]["top1"] == right_cand.mean()


def test_table_output(capsys, setup):
    model, perturbed, npz, _, _ = setup
    code, out, err = run(capsys, "eval", perturbed, "--data", npz, "--reference", model)
    assert code == 0, err
    for text in ("top-1", "confusion matrix", "fidelity to", "paired comparison", "McNemar"):
        assert text in out


def test_unlabelled_folder_needs_a_reference(capsys, setup, tmp_path):
    from PIL import Image

    model, _, _, _, _ = setup
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    code, out, err = run(capsys, "eval", model, "--data", folder, "--json")
    assert code == 2 and out == ""
    assert "no labels in" in err and "--reference MODEL" in err
    code, out, err = run(capsys, "eval", model, "--data", folder, "--reference", model, "--json")
    assert code == 0, err
    result = strict_json(out)
    assert result["accuracy"] is None and result["comparison"] is None
    assert result["fidelity"]["top1_agreement"] == 1.0 and result["fidelity"]["n"] == 5


def test_class_count_mismatch_is_a_clear_error(capsys, setup, tmp_path):
    model, _, _, _, _ = setup
    npz = tmp_path / "five.npz"
    np.savez(npz, x=np.zeros((10, 3, 4, 4), np.float32), y=np.arange(10) % 5)
    code, _, err = run(capsys, "eval", model, "--data", npz)
    assert code == 2 and "out of range for 3 classes" in err
    code, _, err = run(capsys, "eval", model, "--data", "sample", "--limit", "20")
    assert code == 2 and "has 10 classes but orig.cfg outputs 3 scores" in err


def test_non_classifier_output_is_refused(capsys, tmp_path):
    cfg = tmp_path / "map.cfg"
    cfg.write_text(CFG.replace("\n[avgpool]\n", "\n"))  # output 3×4×4, not class scores
    npz = tmp_path / "d.npz"
    np.savez(npz, x=np.zeros((4, 3, 4, 4), np.float32), y=np.zeros(4, int))
    code, _, err = run(capsys, "eval", cfg, "--data", npz)
    assert code == 2 and "N×K scores" in err


def test_onnx_export_evaluated_against_its_original(capsys, setup, tmp_path):
    """The deployment check eval exists for: an exported model vs the float original."""
    model, _, npz, _, _ = setup
    onnx_path = tmp_path / "orig.onnx"
    assert run(capsys, "export", model, "--out", onnx_path)[0] == 0
    code, out, err = run(capsys, "eval", onnx_path, "--data", npz, "--reference", model,
                         "--batch-size", "7", "--json")
    assert code == 0, err
    result = strict_json(out)
    assert result["runtime"].startswith("onnxruntime")
    assert result["preprocess"]["from"] == "reference"  # an ONNX file carries no preset
    assert result["accuracy"]["top1"] == N_RIGHT / N
    assert result["fidelity"]["top1_agreement"] == 1.0 and result["fidelity"]["max_abs"] < 1e-5
    assert result["comparison"]["delta"] == 0.0


def test_static_batch_model_gets_padded_batches(capsys, setup, tmp_path):
    """An ONNX file exported at batch 4 only: 60 samples = 15 full batches, and with
    --limit 57 the last batch is padded with zeros and the padding dropped."""
    import torch

    from infertune.load import load_model

    model, _, npz, y, _ = setup
    net = load_model(model).obj
    path = tmp_path / "static.onnx"
    torch.onnx.export(net, torch.zeros(4, 3, 4, 4), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["output"])
    code, out, err = run(capsys, "eval", path, "--data", npz, "--reference", model,
                         "--limit", "57", "--json")
    assert code == 0, err
    result = strict_json(out)
    assert result["batch_size"] == 4 and result["data"]["n"] == 57
    assert result["fidelity"]["top1_agreement"] == 1.0 and result["fidelity"]["max_abs"] < 1e-5


def test_runtime_flag(capsys, setup):
    from infertune.runtimes import RUNTIMES

    assert RUNTIMES.get("onnxruntime").available() == (True, None)  # a hard dependency
    model, _, npz, _, _ = setup
    code, out, err = run(capsys, "eval", model, "--data", npz, "--reference", model,
                         "--runtime", "onnxruntime", "--threads", "1", "--json")
    assert code == 0, err
    result = strict_json(out)
    assert result["runtime"] == "onnxruntime" and result["threads"] == 1
    assert result["accuracy"]["top1"] == N_RIGHT / N
    assert result["fidelity"]["top1_agreement"] == 1.0 and result["fidelity"]["max_abs"] < 1e-5
