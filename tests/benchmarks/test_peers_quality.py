"""benchmarks/peers_quality.py: data slices per built-in set, top-1 and paired drop figures."""
from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers_quality

from infertune.data import load_dataset


def _handle(data: str, weights: str = "trained", chw=(3, 16, 16)):
    return SimpleNamespace(input_spec=SimpleNamespace(chw=chw),
                           meta={"default_data": data, "preprocess": "darknet",
                                 "weights": weights})


def test_top1_block_counts_and_wilson_interval():
    logits = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]]  # predictions 0 1 2 3 0
    labels = np.array([0, 1, 2, 0, 1])  # 3 of 5 right
    block = peers_quality.top1_block(logits, labels)
    assert block["top1"] == 0.6 and block["n"] == 5
    z, p, n = 1.959963984540054, 0.6, 5  # Wilson score interval written out
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert np.allclose(block["top1_ci"], [centre - half, centre + half], atol=1e-9)


def test_paired_drop_counts_discordant_pairs():
    ref = np.array([True] * 90 + [False] * 10)
    cand = ref.copy()
    cand[:6] = False  # 6 lost
    cand[95:97] = True  # 2 gained
    drop = peers_quality.paired_drop(ref, cand)
    assert (drop["n10"], drop["n01"]) == (6, 2)
    assert math.isclose(drop["points"], 4.0)  # 100·(6 − 2)/100
    assert drop["ci"][0] < 4.0 < drop["ci"][1]
    assert "Tango" in drop["method"]


def test_photos_are_disjoint_slices_of_the_fixed_view_order():
    data = peers_quality.case_data(_handle("photos"), calibration=3, eval_n=5)
    views = load_dataset("photos:8", input_shape=(3, 16, 16), preprocess="darknet").x
    assert data.val_y is None and not data.labelled
    np.testing.assert_array_equal(data.calib, views[:3])
    np.testing.assert_array_equal(data.val_x, views[3:8])
    assert data.calib_desc == "photos views 0–2" and data.val_desc == "photos views 3–7"


@pytest.mark.slow  # renders the sample set's train and val parts (~30 s on 2 loaded cores)
def test_sets_with_parts_calibrate_on_train_and_evaluate_on_val():
    trained = peers_quality.case_data(_handle("sample"), calibration=4, eval_n=7)
    assert trained.calib.shape == (4, 3, 16, 16) and trained.labelled
    assert len(trained.val_x) == len(trained.val_y) > 7  # a trained model: all of :val
    random = peers_quality.case_data(_handle("sample", weights="random"), calibration=4,
                                     eval_n=7)
    assert len(random.val_x) == 7 and random.val_y is None  # random weights: fidelity
