"""Sensitivity analysis: one row per quantizable layer, ranked by the output SQNR with that
layer alone quantized; calibrated once; the pure parts (rank, split) on hand-made data."""
from __future__ import annotations

import math

import numpy as np
import pytest

from infertune.errors import ConfigError
from infertune.passes.sensitivity import (SensitivityConfig, analyze, most_sensitive, rank,
                                          split)

from precision_helpers import WEIGHTED, as_onnx, context, file_hash, tiny


def test_ranks_every_layer(tmp_path):
    model = as_onnx(tiny(), tmp_path)
    before = file_hash(model.path)
    ctx = context(tmp_path, n=48)
    result = analyze(model, ctx)
    layers = result["layers"]
    assert sorted(r["layer"] for r in layers) == sorted(WEIGHTED)
    assert [r["rank"] for r in layers] == [1, 2, 3]
    sqnrs = [r["sqnr_db"] for r in layers]
    assert sqnrs == sorted(sqnrs) and all(math.isfinite(s) and s > 20 for s in sqnrs)
    # one layer alone loses less than all of them together (plus kernel-rounding slack)
    assert sqnrs[0] >= result["all_quantized"]["sqnr_db"] - 0.5
    assert result["data"]["calibration_samples"] + result["data"]["eval_samples"] == 48
    # calibrated once: one cached range file serves the 3 single-layer models and the whole
    assert len(list((ctx.workdir / "quant-calib").glob("*.json"))) == 1
    assert not list(ctx.workdir.glob("*.sens*.onnx"))  # single-layer models are removed
    assert file_hash(model.path) == before


def test_rank_orders_by_sqnr_then_agreement():
    rows = [{"layer": "a", "sqnr_db": 30.0, "top1_agreement": 1.0},
            {"layer": "b", "sqnr_db": None, "top1_agreement": 1.0},  # identical outputs: last
            {"layer": "c", "sqnr_db": 20.0, "top1_agreement": 0.9},
            {"layer": "d", "sqnr_db": 20.0, "top1_agreement": 0.8}]
    assert [(r["rank"], r["layer"]) for r in rank(rows)] == [(1, "d"), (2, "c"), (3, "a"),
                                                              (4, "b")]


def test_split_is_disjoint():
    x = np.arange(10)[:, None]
    cal, ev, note = split(x, SensitivityConfig(samples=128, eval_samples=64))
    assert len(cal) == 5 and len(ev) == 5 and not set(cal.ravel()) & set(ev.ravel())
    cal, ev, _ = split(np.arange(300)[:, None], SensitivityConfig(samples=100, eval_samples=20))
    assert (len(cal), len(ev)) == (100, 20)
    assert "other evaluation" in note


def test_most_sensitive_reasons():
    ranking = {"layers": rank([{"layer": "x", "sqnr_db": 12.34, "top1_agreement": 1.0},
                               {"layer": "y", "sqnr_db": 40.0, "top1_agreement": 1.0}])}
    assert most_sensitive(ranking, 1) == [
        {"layer": "x", "reason": "sensitivity rank 1 of 2: output SQNR 12.3 dB with this layer "
                                 "alone quantized"}]


def test_bad_config_message():
    from infertune import api
    from infertune.commands.options import SensitivityOptions

    with pytest.raises(ConfigError, match="method must be one of minmax, percentile, entropy"):
        api.sensitivity("ref-small", SensitivityOptions(data="sample", method="mse"))
