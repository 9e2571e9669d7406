"""A run evaluated on clustered samples (`--eval-size` beyond the 1,000 digits of
`clutter:val`): the run's data keeps each sample's cluster, and every drop, screening and
full, is judged with the Rao–Scott adjusted interval (metrics.budget)."""
from __future__ import annotations

import numpy as np
import pytest

from infertune.config import OptimizeConfig
from infertune.search import rundata
from infertune.search.evaluation import scores
from infertune.search.state import RunState
from infertune.types import InputSpec, ModelHandle


def _handle() -> ModelHandle:
    return ModelHandle(format="onnx", path="m.onnx", input_spec=InputSpec(shape=(1, 3, 16, 16)),
                       name="m", source="m", meta={"default_data": "clutter"})


def test_the_runs_data_keeps_the_clusters_and_only_while_they_exist(tmp_path, monkeypatch):
    monkeypatch.setattr(rundata, "TRAIN_SAMPLES", 32)  # render 128 train scenes, not 4,096
    run_dir = tmp_path / "run"
    info = rundata.prepare(run_dir, OptimizeConfig(model="m", out=str(run_dir), eval_size=1002),
                           _handle())
    groups = rundata.groups(run_dir)
    assert info["eval_n"] == 1002 and info["eval_clusters"] == 1000
    assert groups is not None and len(groups) == 1002 and len(np.unique(groups)) == 1000
    assert len(np.unique(groups[:64])) == 64  # the screening part: one scene per digit
    # A later request without clusters must not inherit the old clusters file.
    info = rundata.prepare(run_dir, OptimizeConfig(model="m", out=str(run_dir), eval_size=30),
                           _handle())
    assert info["eval_clusters"] is None and rundata.groups(run_dir) is None


def _logits(pred: np.ndarray) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[pred]


def test_full_and_screening_scores_use_the_clusters(tmp_path):
    rng = np.random.default_rng(4)
    labels = np.repeat(rng.integers(0, 10, 200), 3)  # 200 digits, 3 scenes each
    groups = np.repeat(np.arange(200), 3)
    base = _logits(labels)
    # The candidate errs on every scene of 12 digits: perfectly clustered discordance.
    wrong = np.isin(groups, np.arange(12))
    cand = _logits(np.where(wrong, (labels + 1) % 10, labels))
    sc = scores(base, cand, labels, "top1", 0.95, 0, full=True, groups=groups)
    plain = scores(base, cand, labels, "top1", 0.95, 0, full=True)
    # Independent check: 36 discordant of 600, all in whole clusters of 3, so D = (3·200 −
    # 1)/(200 − 1) as for copies (tests/metrics/test_metrics_clusters.py).
    assert sc.drop.design_effect == pytest.approx(599 / 199, rel=1e-12)
    assert sc.drop.clusters == 200 and sc.drop.value == pytest.approx(6.0)
    assert sc.drop.high > plain.drop.high + 1.0
    assert sc.accuracy["top1"]["high"] - sc.accuracy["top1"]["low"] > \
        plain.accuracy["top1"]["high"] - plain.accuracy["top1"]["low"]

    state = RunState(OptimizeConfig(model="m", out=str(tmp_path)), tmp_path, None, None,
                     {"screen_n": 64}, groups=groups)
    np.testing.assert_array_equal(state.screen_groups(), groups[:64])
    assert RunState(OptimizeConfig(model="m", out=str(tmp_path)), tmp_path, None, None,
                    {"screen_n": 64}).screen_groups() is None


def test_the_budget_rule_says_its_intervals_are_adjusted_for_the_clusters(tmp_path):
    labels = np.repeat(np.arange(10), 6)
    state = RunState(OptimizeConfig(model="m", out=str(tmp_path)), tmp_path, None, None,
                     {"screen_n": 20, "spec": "clutter"}, groups=np.repeat(np.arange(20), 3))
    state.set_baseline_logits(_logits(labels), labels)
    assert state.metric == "top1"
    assert "Rao–Scott design effect of the samples' 20 clusters" in state.budget.text()
    plain = RunState(OptimizeConfig(model="m", out=str(tmp_path)), tmp_path, None, None,
                     {"screen_n": 20, "spec": "clutter"})
    plain.set_baseline_logits(_logits(labels), labels)
    assert "Rao–Scott" not in plain.budget.text()
