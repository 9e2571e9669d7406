"""int8_static and int8_dynamic: structure (Q/DQ and integer ops where expected, layers kept
float with reasons), numerics against the float model, the input untouched, bad configs.

Thresholds. INT8 with per-channel weights keeps ~40-45 dB of output SQNR on these tiny
models (measured: 42-46 dB for min-max, percentile and entropy; 51 dB dynamic): 8 bits give
~50 dB on a signal that fills its range, less on peaky activations, and each layer adds its
noise. SQNR_INT8 = 25 dB leaves a 15 dB margin for other kernels and calibration while a
broken quantization (outputs zeroed: 0 dB; a wrong scale: < 10 dB) is far below it. Top-1
agreement is checked at >= 0.9 of 32 samples (one flipped decision per ~10 is what 25 dB
would allow on near-tied random logits).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from extras import require_extra

from infertune.data.dataset import Dataset
from infertune.data.preprocess import resolve_preprocess
from infertune.errors import ConfigError
from infertune.passes import PassContext, apply_passes
from infertune.types import ModelHandle

from precision_helpers import (SPEC, WEIGHTED, agreement, apply, as_onnx, context, darknet,
                               file_hash, images, op_count, outputs, sqnr_db, state_hash,
                               tiny, weight_producer)

SQNR_INT8 = 25.0
AGREEMENT = 0.9
X = images(32, seed=7)


@pytest.fixture
def onnx_model(tmp_path):
    return as_onnx(tiny(), tmp_path)


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_static_ort_structure_and_numerics(onnx_model, tmp_path, method):
    before = file_hash(onnx_model.path)
    out, report = apply(onnx_model, "int8_static", context(tmp_path), method=method)
    assert report["applied"] and out.format == "onnx" and out.path != onnx_model.path
    for layer in WEIGHTED:  # every weight goes through DequantizeLinear (stored as int8)
        assert weight_producer(out.path, layer) == "DequantizeLinear"
    # one Q per quantized activation tensor (input, 2 conv inputs, linear input at least),
    # one DQ per Q plus one per weight: DQ = Q + 3 (weights) + biases quantized to int32
    q, dq = op_count(out.path, "QuantizeLinear"), op_count(out.path, "DequantizeLinear")
    assert q >= 4 and dq >= q + len(WEIGHTED)
    assert report["qdq"] == {"QuantizeLinear": q, "DequantizeLinear": dq}
    assert sorted(report["quantized"]) == sorted(WEIGHTED)
    ref, got = outputs(onnx_model, X), outputs(out, X)
    assert sqnr_db(ref, got) >= SQNR_INT8
    assert agreement(ref, got) >= AGREEMENT
    assert file_hash(onnx_model.path) == before  # the input model is untouched


def test_per_tensor_weights_have_one_scale(onnx_model, tmp_path):
    import onnx
    from onnx import numpy_helper

    scales = {}
    for per_channel in (True, False):
        out, _ = apply(onnx_model, "int8_static", context(tmp_path), per_channel=per_channel)
        proto = onnx.load(out.path)
        inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
        conv = next(n for n in proto.graph.node if n.name == "/3/Conv")
        dq = next(n for n in proto.graph.node if n.output[0] == conv.input[1])
        scales[per_channel] = inits[dq.input[1]].size
    assert scales == {True: 16, False: 1}  # 16 output channels of /3/Conv


def test_torch_model_is_exported_and_left_untouched(tmp_path):
    model = tiny()
    before = state_hash(model.obj)
    out, report = apply(model, "int8_static", context(tmp_path))
    assert out.format == "onnx" and report["exported_to_onnx"] is True
    assert state_hash(model.obj) == before
    assert sqnr_db(outputs(model, X), outputs(out, X)) >= SQNR_INT8


def test_softmax_is_kept_float(tmp_path):
    model = as_onnx(tiny(softmax=True), tmp_path)
    out, report = apply(model, "int8_static", context(tmp_path))
    kept = {k["layer"]: k["reason"] for k in report["kept_float"]}
    softmax = [n for n in kept if "Softmax" in n]
    assert softmax and "[0, 1]" in kept[softmax[0]]
    assert agreement(outputs(model, X), outputs(out, X)) >= AGREEMENT


def _softmax_output_scales(path: str) -> list[float]:
    """The scales of the QuantizeLinear nodes fed by a Softmax in the written model."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    return [float(inits[n.input[1]]) for n in proto.graph.node if n.op_type == "QuantizeLinear"
            and n.input[0] in producer and producer[n.input[0]].op_type == "Softmax"]


@pytest.mark.parametrize("activations,levels", [("int8", 127), ("uint8", 255)])
def test_softmax_int8_is_quantized_on_the_fixed_unit_range(tmp_path, activations, levels):
    # tiny()'s 10-class Softmax: every row's top probability is ≥ 1/10, far above 2 steps
    model = as_onnx(tiny(softmax=True), tmp_path)
    out, report = apply(model, "int8_static", context(tmp_path), softmax="int8",
                        activations=activations)
    assert report["applied"] and report["softmax"] == "int8"
    assert not [k for k in report["kept_float"] if "Softmax" in k["layer"]]
    assert _softmax_output_scales(out.path) == [pytest.approx(1 / levels, rel=1e-5)]
    assert agreement(outputs(model, X), outputs(out, X)) >= AGREEMENT


def test_softmax_int8_is_refused_where_its_range_does_not_allow(tmp_path):
    # 1,000 classes with near-equal logits: every probability ≈ 1/1000, under 2 steps of
    # 1/127, so quantizing would round every output to 0 or 1 step
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 1000),
                              torch.nn.Softmax(dim=1)).eval()
    with torch.no_grad():
        net[3].weight.mul_(1e-3)
        net[3].bias.zero_()
    handle = ModelHandle(format="torch", obj=net, input_spec=SPEC, name="flat", source="test")
    model = as_onnx(handle, tmp_path)
    out, report = apply(model, "int8_static", context(tmp_path), softmax="int8")
    assert not report["applied"] and out.path == model.path
    assert "range does not allow" in report["reason"] and "0% of 32" in report["reason"]


def _weight_int_ranges(path: str) -> dict[str, tuple[int, int]]:
    """{weighted node: (min, max) of its int8 weight} in a written QDQ model."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    out = {}
    for node in proto.graph.node:
        if node.op_type in ("Conv", "Gemm") and node.input[1] in producer:
            w = inits[producer[node.input[1]].input[0]]
            out[node.name] = (int(w.min()), int(w.max()))
    return out


@pytest.mark.parametrize("asked,bits", [("on", 7), ("off", 8)])
def test_reduce_range_gives_7_bit_weights(onnx_model, tmp_path, asked, bits):
    out, report = apply(onnx_model, "int8_static", context(tmp_path), reduce_range=asked)
    assert report["weight_bits"] == bits and asked in report["weight_bits_why"]
    ranges = _weight_int_ranges(out.path)
    assert sorted(ranges) == sorted(WEIGHTED)
    # symmetric per-channel weights: the largest |w| of a layer maps to the end of the range,
    # ±(2^(bits-1) - 1) for 8 bits; ORT's 7-bit range is [-64, 64] (its reduced symmetric
    # range), which ORT's kernels sum without saturating
    top = 64 if bits == 7 else 127
    assert all(r == (-top, top) for r in ranges.values()), ranges


def test_reduce_range_auto_follows_this_cpu(onnx_model, tmp_path):
    from infertune.machine import int8_sums_saturate

    out, report = apply(onnx_model, "int8_static", context(tmp_path))
    assert report["weight_bits"] == (7 if int8_sums_saturate() else 8)
    # either way the result is accurate on this machine's kernels (see _ort_quant)
    assert sqnr_db(outputs(onnx_model, X), outputs(out, X)) >= SQNR_INT8


def test_softmax_int8_without_a_softmax_does_not_apply(onnx_model, tmp_path):
    out, report = apply(onnx_model, "int8_static", context(tmp_path), softmax="int8")
    assert not report["applied"] and "no Softmax" in report["reason"]


def test_darknet_bn_is_folded_before_quantization(tmp_path):
    model = darknet(tmp_path)
    out, report = apply(model, "int8_static", context(tmp_path))
    assert report["preprocess"]["removed_ops"].get("BatchNormalization") == 1  # folded first
    assert sqnr_db(outputs(model, X), outputs(out, X)) >= SQNR_INT8


def test_darknet_edge_padded_maxpool_needs_no_exclusion(tmp_path):
    """The usual Darknet pools (padding < size) are edge-padded by the importer: no -FLT_MAX in
    the graph, so nothing is kept float for it."""
    out, report = apply(darknet(tmp_path), "int8_static", context(tmp_path))
    assert not any("FLT_MAX" in k["reason"] for k in report["kept_float"])
    assert sqnr_db(outputs(darknet(tmp_path), X), outputs(out, X)) >= SQNR_INT8


def test_needs_calibration_data(onnx_model, tmp_path):
    with pytest.raises(ConfigError, match="needs data"):
        apply_passes(onnx_model, [("int8_static", {})], PassContext(workdir=tmp_path))


@pytest.mark.parametrize("options,message", [
    ({"method": "foo"}, "method must be one of minmax, mean_minmax, percentile, entropy"),
    ({"engine": "bar"}, "engine must be one of ort, nncf, torch"),
    ({"engine": "nncf", "method": "entropy"},
     "engine nncf calibrates with minmax, mean_minmax or percentile"),
    ({"method": "mean_minmax"}, "engine ort calibrates with minmax, percentile or entropy"),
    ({"engine": "torch", "per_channel": "false"}, "per channel only"),
    ({"activations": "uint8", "engine": "nncf"}, "engine ort only"),
    ({"softmax": "int8", "engine": "nncf"}, "softmax applies to engine ort only"),
    ({"softmax": "uint8"}, "softmax must be one of float, int8"),
    ({"reduce_range": "on", "engine": "nncf"}, "reduce_range applies to engine ort only"),
    ({"samples": "0"}, "samples must be at least 1"),
    ({"method": "entropy", "bins": "9"}, "unknown option 'bins'"),
])
def test_bad_static_configs(onnx_model, tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        apply_passes(onnx_model, [("int8_static", options)], context(tmp_path))


def test_static_nncf(onnx_model, tmp_path):
    require_extra("nncf")
    out, report = apply(onnx_model, "int8_static", context(tmp_path), engine="nncf")
    assert out.format == "openvino" and out.path.endswith(".xml")
    assert sorted(report["quantized"]) == sorted(WEIGHTED)
    assert report["fake_quantize"] >= 3  # activations: the input of each weighted layer
    assert report["bytes_after"] > 0
    assert sqnr_db(outputs(onnx_model, X), outputs(out, X)) >= SQNR_INT8


def fake_quantize_highs(xml: str) -> list[float]:
    """The upper input limit of every FakeQuantize in an OpenVINO IR (the calibrated range)."""
    import openvino as ov

    model = ov.Core().read_model(xml)
    return [float(np.max(op.input_value(2).get_node().get_data()))
            for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize"]


def test_nncf_mean_minmax_is_narrower_than_minmax_under_an_outlier(onnx_model, tmp_path):
    # NNCF's own default for per-tensor activations averages each sample's min/max; minmax
    # takes the extremes over all samples. One calibration image scaled x50 sets minmax's
    # input range (~50x a normal image's); mean_minmax's grows by ~(50-1)/32 of it only.
    require_extra("nncf")
    x = images(32, seed=3)
    x[0] *= 50.0
    calib = Dataset(x, None, [], "seeded normal images, one x50", resolve_preprocess("none"))
    highs = {}
    for method in ("minmax", "mean_minmax"):
        ctx = PassContext(workdir=tmp_path / method, calibration=calib)
        out, report = apply(onnx_model, "int8_static", ctx, engine="nncf", method=method)
        assert report["applied"] and report["config"]["method"] == method
        highs[method] = fake_quantize_highs(out.path)
    # the widest range: the network input's (or an activation after it) under minmax
    assert max(highs["minmax"]) >= 0.9 * float(np.max(x))
    assert max(highs["mean_minmax"]) < 0.4 * max(highs["minmax"])


def test_static_torch_pt2e(tmp_path):
    require_extra("torchao")
    model = tiny()
    before = state_hash(model.obj)
    out, report = apply(model, "int8_static", context(tmp_path), engine="torch")
    assert report["applied"], report["reason"]
    assert out.format == "torch" and report["qdq"]["dequantize"] >= 3
    assert sorted(report["quantized"]) == ["0", "3", "7"]  # module names of the conv/linear
    assert state_hash(model.obj) == before
    assert sqnr_db(outputs(model, X), outputs(out, X)) >= SQNR_INT8


def test_static_torch_without_torchao_does_not_apply(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao.quantization.pt2e.quantize_pt2e", None)
    model = tiny()
    out, report = apply(model, "int8_static", context(tmp_path), engine="torch")
    assert report["applied"] is False and "torchao" in report["reason"]
    assert out is model


def test_static_torch_on_onnx_does_not_apply(onnx_model, tmp_path):
    out, report = apply(onnx_model, "int8_static", context(tmp_path), engine="torch")
    assert report["applied"] is False and "torch models" in report["reason"]
    assert out.path == onnx_model.path


def test_dynamic_ort(onnx_model, tmp_path):
    before = file_hash(onnx_model.path)
    out, report = apply_passes(onnx_model, [("int8_dynamic", {})], PassContext(tmp_path))
    report = report[-1]
    assert report["applied"] and op_count(out.path, "ConvInteger") == 2
    assert op_count(out.path, "DynamicQuantizeLinear") >= 2  # activations at run time
    assert op_count(out.path, "QuantizeLinear") == 0  # nothing calibrated
    assert sqnr_db(outputs(onnx_model, X), outputs(out, X)) >= SQNR_INT8
    assert file_hash(onnx_model.path) == before


def test_dynamic_torch_quantizes_linear_only(tmp_path):
    model = tiny()
    out, report = apply_passes(model, [("int8_dynamic", {"engine": "torch"})],
                               PassContext(tmp_path))
    report = report[-1]
    assert report["quantized"] == ["7"]
    assert {k["layer"] for k in report["kept_float"]} == {"0", "3"}
    assert isinstance(model.obj[7], torch.nn.Linear)  # the input keeps its float Linear
    assert sqnr_db(outputs(model, X), outputs(out, X)) >= SQNR_INT8


def test_bad_dynamic_config(onnx_model, tmp_path):
    with pytest.raises(ConfigError, match="engine must be one of ort, torch"):
        apply_passes(onnx_model, [("int8_dynamic", {"engine": "nncf"})], PassContext(tmp_path))
