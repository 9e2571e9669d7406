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


def test_failed_symbolic_shape_inference_leaves_no_files_in_the_working_folder(tmp_path,
                                                                               monkeypatch):
    # ORT's symbolic shape inference cannot type a custom-domain op; when it fails it saves
    # sym_shape_infer_temp.onnx and a <uuid>.data into the current folder. The pre-process
    # must fall back (skip it) and leave neither in the user's folder nor beside the output.
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    import numpy as np

    from infertune.passes._ort_quant import _pre_process

    w = numpy_helper.from_array(np.ones((64, 3, 3, 3), np.float32), "w")  # > 1 KiB: external
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]),
         helper.make_node("Foo", ["c"], ["y"], domain="com.example")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "cwd").mkdir()
    onnx.save(model, str(tmp_path / "in" / "m.onnx"))
    monkeypatch.chdir(tmp_path / "cwd")
    note = _pre_process(tmp_path / "in" / "m.onnx", tmp_path / "out" / "p.onnx")
    assert note is not None  # the symbolic pass failed: the fallback says so
    assert list((tmp_path / "cwd").iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) in ([], ["p.onnx"])
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["m.onnx"]
