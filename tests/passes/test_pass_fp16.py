"""fp16: float16 for ONNX Runtime (float32 I/O), OpenVINO (inference precision hint) and
torch (module in float16 behind float32 I/O); numerics, the input untouched, bad configs.

Threshold: float16 keeps 10 mantissa bits, a relative rounding of ~5e-4 per value (~66 dB);
rounding through a few layers measured 69-73 dB on the tiny model. SQNR_FP16 = 50 dB leaves
~20 dB of margin and is still ~25 dB above what INT8 gives, so a pass that silently
quantized (or dropped a layer) would fail it.
"""
from __future__ import annotations

import onnx
import pytest
import torch

from infertune.errors import ConfigError
from infertune.passes import apply_passes

from precision_helpers import (apply, as_onnx, context, darknet, file_hash, images, outputs,
                               sqnr_db, state_hash, tiny)

SQNR_FP16 = 50.0
X = images(16, seed=3)


def test_onnxruntime_graph_is_float16_with_float32_io(tmp_path):
    model = as_onnx(tiny(), tmp_path)
    before = file_hash(model.path)
    out, report = apply(model, "fp16", context(tmp_path))  # auto: ONNX -> onnxruntime
    assert report["applied"] and report["target"] == "onnxruntime"
    proto = onnx.load(out.path)
    io = [v.type.tensor_type.elem_type for v in list(proto.graph.input) + list(proto.graph.output)]
    assert io == [onnx.TensorProto.FLOAT] * 2
    weights = [i for i in proto.graph.initializer if len(i.dims) == 4]
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    assert report["casts"] >= 2  # one at the input, one at the output
    assert isinstance(report["ort_fallback_casts"], int)  # counted, whatever this CPU has
    assert isinstance(report["native"], bool) and report["note"]
    assert sqnr_db(outputs(model, X), outputs(out, X)) >= SQNR_FP16
    assert file_hash(model.path) == before


def test_torch_module_in_float16(tmp_path):
    model = tiny()
    before = state_hash(model.obj)
    out, report = apply(model, "fp16", context(tmp_path))  # auto: torch -> torch
    assert report["target"] == "torch" and out.format == "torch"
    dtypes = {p.dtype for p in out.obj.parameters()}
    assert dtypes == {torch.float16}
    assert outputs(out, X).dtype.name == "float32"
    assert sqnr_db(outputs(model, X), outputs(out, X)) >= SQNR_FP16
    assert state_hash(model.obj) == before
    # float tensors halve; BatchNorm's int64 num_batches_tracked (8 bytes) does not
    assert report["bytes_after"] == (report["bytes_before"] - 8) // 2 + 8


def test_darknet_padded_maxpool_converts(tmp_path):
    """Darknet pads max-pools with -FLT_MAX, which float16 cannot hold."""
    model = darknet(tmp_path)
    out, _ = apply(model, "fp16", context(tmp_path), target="torch")
    assert sqnr_db(outputs(model, X), outputs(out, X)) >= SQNR_FP16


def test_openvino_hint_is_carried_into_the_ir(tmp_path):
    import openvino as ov

    from infertune.runtimes import RUNTIMES
    from infertune.runtimes.openvino import artifact_precision

    model = tiny()
    out, report = apply(model, "fp16", context(tmp_path), target="openvino")
    assert out.meta["inference_precision"] == "f16" and out.obj is model.obj
    artifact = RUNTIMES.get("openvino").build(out, tmp_path / "ov")
    assert artifact_precision(ov.Core().read_model(str(artifact))) == "f16"


@pytest.mark.parametrize("options,message", [
    ({"target": "gpu"}, "target must be one of auto, onnxruntime, openvino, torch"),
    ({"precision": "f16"}, "unknown option 'precision'"),
])
def test_bad_configs(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        apply_passes(tiny(), [("fp16", options)], context(tmp_path))


def test_onnx_model_cannot_target_torch(tmp_path):
    model = as_onnx(tiny(), tmp_path)
    out, report = apply(model, "fp16", context(tmp_path), target="torch")
    assert report["applied"] is False and "torch model" in report["reason"]
    assert out.path == model.path
