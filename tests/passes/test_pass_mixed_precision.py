"""mixed_precision: the kept layers stay float (ORT nodes_to_exclude, NNCF ignored_scope),
the rest is INT8; keep=K keeps the K most sensitive by the sensitivity ranking; bad keeps.

Numerics: keeping the most sensitive layer float must not make the output worse than
quantizing everything (same calibration, so the same ranges: the comparison is exact up to
kernel rounding, hence the 0.5 dB tolerance).
"""
from __future__ import annotations

import pytest
from extras import require_extra

from infertune.errors import ConfigError
from infertune.passes import apply_passes
from infertune.passes.sensitivity import analyze

from precision_helpers import (WEIGHTED, apply, as_onnx, context, file_hash, images, outputs,
                               sqnr_db, tiny, weight_producer)

X = images(32, seed=11)
SQNR_INT8 = 25.0  # as in test_pass_int8.py


@pytest.fixture
def onnx_model(tmp_path):
    return as_onnx(tiny(), tmp_path)


def test_named_layers_stay_float(onnx_model, tmp_path):
    before = file_hash(onnx_model.path)
    keep = "/0/Conv+/7/Gemm"
    out, report = apply(onnx_model, "mixed_precision", context(tmp_path), keep=keep)
    assert weight_producer(out.path, "/3/Conv") == "DequantizeLinear"
    for layer in ("/0/Conv", "/7/Gemm"):
        assert weight_producer(out.path, layer) is None  # a float initializer
    assert report["quantized"] == ["/3/Conv"]
    assert {k["layer"]: k["reason"] for k in report["kept_float"]} == {
        "/0/Conv": "named in keep", "/7/Gemm": "named in keep"}
    assert sqnr_db(outputs(onnx_model, X), outputs(out, X)) >= SQNR_INT8
    assert file_hash(onnx_model.path) == before


def test_keep_k_keeps_the_most_sensitive(onnx_model, tmp_path):
    ctx = context(tmp_path)
    ranking = analyze(onnx_model, ctx)
    out, report = apply(onnx_model, "mixed_precision", ctx, keep=1)
    first = ranking["layers"][0]["layer"]
    assert [k["layer"] for k in report["kept_float"]] == [first]
    assert "sensitivity rank 1 of 3" in report["kept_float"][0]["reason"]
    assert weight_producer(out.path, first) is None
    assert [r["layer"] for r in report["sensitivity"]] == [r["layer"] for r in ranking["layers"]]
    full, _ = apply(onnx_model, "int8_static", ctx)
    ref = outputs(onnx_model, X)
    assert sqnr_db(ref, outputs(out, X)) >= sqnr_db(ref, outputs(full, X)) - 0.5


def test_keep_zero_is_int8_static(onnx_model, tmp_path):
    _, report = apply(onnx_model, "mixed_precision", context(tmp_path), keep=0)
    assert sorted(report["quantized"]) == sorted(WEIGHTED) and report["kept_float"] == []


def test_keeping_everything_does_not_apply(onnx_model, tmp_path):
    out, report = apply(onnx_model, "mixed_precision", context(tmp_path), keep=3)
    assert report["applied"] is False and "nothing to quantize" in report["reason"]
    assert out.path == onnx_model.path


@pytest.mark.parametrize("keep,message", [
    ("/0/Con", "did you mean '/0/Conv'"),
    ("2+/0/Conv", "a count K or layer names, not both"),
])
def test_bad_keep(onnx_model, tmp_path, keep, message):
    with pytest.raises(ConfigError, match=message):
        apply_passes(onnx_model, [("mixed_precision", {"keep": keep})], context(tmp_path))


def test_bad_engine(onnx_model, tmp_path):
    with pytest.raises(ConfigError, match="engine must be one of ort, nncf"):
        apply_passes(onnx_model, [("mixed_precision", {"engine": "torch"})], context(tmp_path))


def test_nncf_ignored_scope(onnx_model, tmp_path):
    require_extra("nncf")
    out, report = apply(onnx_model, "mixed_precision", context(tmp_path), keep="/3/Conv",
                        engine="nncf")
    assert out.format == "openvino"
    assert sorted(report["quantized"]) == ["/0/Conv", "/7/Gemm"]
    assert [k["layer"] for k in report["kept_float"]] == ["/3/Conv"]
    assert sqnr_db(outputs(onnx_model, X), outputs(out, X)) >= SQNR_INT8


def test_nncf_mean_minmax_keeps_the_ort_min_max_ranking(onnx_model, tmp_path):
    # the plan's NNCF INT8 candidate calibrates with mean_minmax; its mixed-precision
    # children rank layers by ONNX Runtime's sensitivity, which has no mean_minmax: they use
    # the min-max ranking, so the kept layer is the min-max ranking's first
    require_extra("nncf")
    ctx = context(tmp_path)
    first = analyze(onnx_model, ctx)["layers"][0]["layer"]
    out, report = apply(onnx_model, "mixed_precision", ctx, keep=1, engine="nncf",
                        method="mean_minmax")
    assert out.format == "openvino" and report["applied"]
    assert [k["layer"] for k in report["kept_float"]] == [first]
