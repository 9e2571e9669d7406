"""bf16: bfloat16 for OpenVINO (inference precision hint) and torch (module in bfloat16
behind float32 I/O); ONNX Runtime does not apply (no CPU kernels), and says so.

Threshold: bfloat16 keeps 7 mantissa bits, ~4e-3 relative rounding per value (~48 dB);
through the tiny model it measured ~50 dB. SQNR_BF16 = 35 dB is a 15 dB margin and still
above what INT8 gives on these models (~43 dB is close; so bf16 is also checked for being
*lossy*: below the float16 figure, proving the module really ran in bfloat16).
"""
from __future__ import annotations

import pytest
import torch

from infertune.errors import ConfigError
from infertune.passes import apply_passes
from infertune.passes._lowp import native_support

from precision_helpers import (apply, as_onnx, context, darknet, images, outputs, sqnr_db,
                               state_hash, tiny)

SQNR_BF16 = 35.0
X = images(16, seed=5)


def test_torch_module_in_bfloat16(tmp_path):
    model = tiny()
    before = state_hash(model.obj)
    out, report = apply(model, "bf16", context(tmp_path))
    assert report["applied"] and report["target"] == "torch"
    assert {p.dtype for p in out.obj.parameters()} == {torch.bfloat16}
    ref, got = outputs(model, X), outputs(out, X)
    assert got.dtype.name == "float32"
    assert SQNR_BF16 <= sqnr_db(ref, got) < 65.0  # lossy as bfloat16 is, not float32-exact
    assert state_hash(model.obj) == before


def test_native_support_is_reported(tmp_path):
    _, report = apply(tiny(), "bf16", context(tmp_path))
    assert report["native"] == native_support("bf16")["native"]
    assert ("native on this CPU" in report["note"]) == report["native"]


def test_darknet_padded_maxpool_converts(tmp_path):
    model = darknet(tmp_path)
    out, _ = apply(model, "bf16", context(tmp_path))
    assert sqnr_db(outputs(model, X), outputs(out, X)) >= SQNR_BF16


def test_onnxruntime_does_not_apply(tmp_path):
    model = as_onnx(tiny(), tmp_path)
    out, report = apply(model, "bf16", context(tmp_path))  # auto: ONNX -> onnxruntime
    assert report["applied"] is False and "bfloat16" in report["reason"]
    assert out is model


def test_openvino_runs_bf16(tmp_path):
    from infertune.runtimes.session import get_opener
    from infertune.runtimes import RUNTIMES

    model = as_onnx(tiny(), tmp_path)
    out, _ = apply(model, "bf16", context(tmp_path), target="openvino")
    assert out.meta["inference_precision"] == "bf16" and out.path == model.path
    runtime = RUNTIMES.get("openvino")
    session = get_opener("openvino")(str(runtime.build(out, tmp_path / "ov")), runtime.options(1))
    try:
        info = session.describe()
        got = session.run(X)[0]
    finally:
        session.close()
    assert info["requested_precision"] == "bf16"  # the artifact's request beats the f32 default
    if native_support("bf16")["native"]:
        assert info["inference_precision"] == "bf16"
    assert sqnr_db(outputs(model, X), got.reshape(len(X), -1)) >= SQNR_BF16


def test_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="target must be one of"):
        apply_passes(tiny(), [("bf16", {"target": "tensorrt"})], context(tmp_path))
