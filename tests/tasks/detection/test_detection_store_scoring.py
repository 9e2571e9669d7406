"""The run's detection files (store.py) read back exactly; the search's scoring of a
detector (scoring.py): a candidate equal to the original has no drop, fidelity mAP of the
original against itself is 1, a worse candidate has a positive paired drop, and the
DetectionSpec survives to_dict/from_dict (the workers read it from the run directory)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import detector_cfgs as cfgs

from infertune.load import load_model
from infertune.tasks.detection.heads import DetectionSpec
from infertune.tasks.detection.records import DetectionSample, Detections
from infertune.tasks.detection.scoring import score_detections
from infertune.tasks.detection.store import (MAX_DETS, load_detections, load_samples,
                                             save_detections, save_samples)


def _dets(seed: int, n: int = 6, k: int = 5) -> list[Detections]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        xy = rng.uniform(0, 60, (k, 2))
        wh = rng.uniform(5, 30, (k, 2))
        scores = np.sort(rng.uniform(0.01, 1, k))[::-1]
        out.append(Detections(np.hstack([xy, xy + wh]), scores, rng.integers(0, 2, k), (100, 90)))
    return out


def test_detections_and_samples_round_trip(tmp_path):
    dets = _dets(0) + [Detections.empty((10, 20))]
    save_detections(tmp_path / "d.npz", dets)
    back = load_detections(tmp_path / "d.npz")
    assert len(back) == len(dets)
    for a, b in zip(dets, back):
        assert a.image_hw == b.image_hw
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.classes, b.classes)
    samples = [DetectionSample(Path("x.png"), (100, 90), d.boxes, d.classes, 7 + i,
                               np.arange(len(d)) == 0) for i, d in enumerate(dets)]
    save_samples(tmp_path / "s.npz", samples)
    for a, b in zip(samples, load_samples(tmp_path / "s.npz")):
        assert (a.image_hw, a.image_id) == (b.image_hw, b.image_id)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.crowd, b.crowd)


def test_only_the_best_max_dets_are_kept(tmp_path):
    k = MAX_DETS + 20
    many = Detections(np.tile([0, 0, 5, 5], (k, 1)), np.linspace(1, 0.01, k), np.zeros(k), (9, 9))
    save_detections(tmp_path / "d.npz", [many])
    (back,) = load_detections(tmp_path / "d.npz")
    assert len(back) == MAX_DETS and back.scores.min() == pytest.approx(many.scores[MAX_DETS - 1])


def test_same_outputs_no_drop_and_fidelity_one():
    base = _dets(1)
    sc = score_detections(None, base, base, 2, threshold=0.25, full=True)
    assert sc.metric == "fidelity_map"
    assert sc.baseline == sc.candidate == pytest.approx(1.0)
    assert (sc.drop.value, sc.drop.low, sc.drop.high) == (0.0, 0.0, 0.0)
    assert sc.fidelity.value == pytest.approx(1.0) and sc.shift.median_change == 0.0


def test_a_worse_candidate_has_a_positive_paired_drop():
    truth_dets = _dets(2)
    truth = [DetectionSample(Path(f"{i}"), d.image_hw, d.boxes, d.classes, i)
             for i, d in enumerate(truth_dets)]
    worse = [Detections(d.boxes + 8.0, d.scores, d.classes, d.image_hw) for d in truth_dets]
    sc = score_detections(truth, truth_dets, worse, 2, threshold=0.25, full=True)
    assert sc.metric == "map" and sc.baseline == pytest.approx(1.0)
    assert sc.drop.value == pytest.approx(sc.baseline - sc.candidate) and sc.drop.value > 0.3
    assert sc.drop.low > 0 and sc.drop.low <= sc.drop.high
    assert set(sc.aps) == {"map", "ap50", "ap75"}
    assert sc.aps["map"].value == pytest.approx(sc.candidate)
    assert "bootstrap over images" in sc.method


def test_detection_spec_round_trips(tmp_path):
    cfg = tmp_path / "v4.cfg"
    cfg.write_text(cfgs.yolov4_tiny(64))
    spec = load_model(str(cfg)).meta["detection"]
    again = DetectionSpec.from_dict(spec.to_dict())
    assert again == spec


def test_region_heads_round_trip():
    from infertune.tasks.detection.heads import RegionHead

    head = RegionHead(layer=3, output="region_3", grid=(4, 4), classes=5,
                      anchors=((1.0, 2.0), (3.0, 4.0)), softmax=True)
    spec = DetectionSpec(heads=(head,), input_hw=(128, 128), nms_threshold=0.4)
    assert DetectionSpec.from_dict(spec.to_dict()) == spec
