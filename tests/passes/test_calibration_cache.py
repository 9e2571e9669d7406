"""Calibrated ranges shared between the pipelines of one run (PassContext.cache_dir): the
second candidate with the same model, data and method reads no calibration data at all, and
its quantized model is the same file as the first's."""
from __future__ import annotations

import dataclasses

import pytest

from infertune.passes import _ort_quant

from precision_helpers import apply, as_onnx, context, file_hash, tiny


def test_a_second_pipeline_reuses_the_ranges(tmp_path, monkeypatch):
    model = as_onnx(tiny(), tmp_path)
    shared = tmp_path / "run-cache"
    first_ctx = dataclasses.replace(context(tmp_path / "a"), cache_dir=shared)
    first, _ = apply(model, "int8_static", first_ctx, method="minmax")
    cached = list((shared / "quant-calib").glob("*.json"))
    assert len(cached) == 1 and not list(shared.glob("quant-calib/.*tmp"))

    class NoData(_ort_quant.DatasetReader):
        def get_next(self):
            raise AssertionError("calibration data read although the ranges were cached")

    monkeypatch.setattr(_ort_quant, "DatasetReader", NoData)
    second_ctx = dataclasses.replace(context(tmp_path / "b"), cache_dir=shared)
    second, _ = apply(model, "int8_static", second_ctx, method="minmax")
    assert file_hash(second.path) == file_hash(first.path)
    # another method is another key: it calibrates (and here meets the reader that refuses)
    with pytest.raises(Exception, match="calibration data read"):
        apply(model, "int8_static", second_ctx, method="entropy")
