"""Keras (.keras, .h5), SavedModel and TFLite inputs with the [tf] extra: a tiny Keras model
built here is saved in every format, loaded by infertune (converted to ONNX), and checked
against Keras itself, against MACs worked out by hand from its layer shapes, and through the
CLI's profile, bench, eval and optimize.

Skipped, with the reason, when the extra is not installed; under CI (and with
INFERTUNE_REQUIRE_EXTRAS=1, which .ci/run sets) that is a failure instead (tests/extras.py),
so CI cannot pass without running these.

Tolerances: conversion changes kernels, not maths. The converted model is compared with
Keras on fresh random inputs with rtol 1e-4 / atol 1e-5; float32 rounding over these few
layers is ~1e-7 relative, and a wrong layout, a dropped BatchNorm or a wrong op is O(0.1).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from extras import require_extra

pytestmark = pytest.mark.tf
tf = require_extra("tensorflow", "tf")
require_extra("tf2onnx", "tf")
keras = require_extra("keras", "tf")

import onnxruntime as ort  # noqa: E402

from infertune.cli import main  # noqa: E402
from infertune.errors import ModelFileError, UnsupportedModel  # noqa: E402
from infertune.load import load_model  # noqa: E402
from infertune.load import _tf_parity as tfparity  # noqa: E402
from infertune.load import tensorflow as tfload  # noqa: E402

H = W = 8
C_IN, C1, C2, CLASSES = 3, 4, 8, 10
FORMATS = ("keras", "h5", "saved_model", "tflite")


def build_model() -> keras.Model:
    """Conv2D → BN → ReLU → DepthwiseConv2D (+ residual Add) → Conv2D stride 2 → GAP → Dense."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((H, W, C_IN), name="image")
    x = keras.layers.Conv2D(C1, 3, padding="same", use_bias=False)(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Conv2D(C2, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(CLASSES)(x))
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    rng = np.random.default_rng(0)  # non-trivial statistics: a dropped BN would show
    bn.set_weights([rng.uniform(0.5, 1.5, C1), rng.normal(0, 0.3, C1), rng.normal(0, 0.3, C1),
                    rng.uniform(0.5, 2.0, C1)])
    return model


def hand_macs() -> int:
    """Multiply-accumulates of the conv and dense layers, from the layer shapes."""
    conv1 = H * W * C1 * (3 * 3 * C_IN)            # 3×3, same padding, stride 1
    depthwise = H * W * C1 * (3 * 3)               # one 3×3 filter per channel
    conv2 = (H // 2) * (W // 2) * C2 * (3 * 3 * C1)  # stride 2 halves H and W
    dense = C2 * CLASSES
    return conv1 + depthwise + conv2 + dense       # 6912 + 2304 + 4608 + 80 = 13904


def save_all(model: keras.Model, folder) -> dict[str, str]:
    paths = {"keras": folder / "net.keras", "h5": folder / "net.h5",
             "saved_model": folder / "net_savedmodel", "tflite": folder / "net.tflite"}
    model.save(paths["keras"])
    model.save(paths["h5"])
    model.export(str(paths["saved_model"]), verbose=False)
    paths["tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("converted-cache")


@pytest.fixture(autouse=True)
def own_cache(cache, monkeypatch):
    """Conversions are cached here, not in the user's cache (and never beside the input)."""
    monkeypatch.setenv("INFERTUNE_CACHE_DIR", str(cache))


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    model = build_model()
    folder = tmp_path_factory.mktemp("models")
    return model, save_all(model, folder), folder


def snapshot(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_converts_with_parity_and_says_what_was_transposed(net, fmt):
    model, paths, folder = net
    before = snapshot(folder)
    handle = load_model(paths[fmt])
    assert snapshot(folder) == before  # inputs never modified, nothing written beside them
    assert handle.format == "onnx" and handle.source == paths[fmt]
    assert handle.input_spec.shape == ("batch", C_IN, H, W) and handle.input_spec.layout == "NCHW"
    record = handle.meta["converted_from"]
    assert record["format"] == ("keras" if fmt == "h5" else fmt)
    assert record["converter"].startswith("tf2onnx 1.17") and record["opset"] == 17
    assert record["source_layout"] == "NHWC" and record["transposed"].startswith("NHWC->NCHW")
    assert record["source_input"]["shape"] == [None if fmt != "tflite" else 1, H, W, C_IN]
    import onnx  # no Flatten of NHWC data here: tf2onnx folds the input transpose away

    assert "Transpose" not in [n.op_type for n in onnx.load(handle.path).graph.node]
    parity = record["parity"]
    assert parity["passed"] and parity["max_abs_diff"] <= parity["tolerance"]
    assert parity["max_abs_diff"] < 1e-5 and parity["rel_tolerance"] == tfparity.PARITY_REL
    # independently: Keras on fresh inputs (NHWC) vs ONNX Runtime on the same data as NCHW
    x = np.random.default_rng(7).standard_normal((3, H, W, C_IN)).astype(np.float32)
    session = ort.InferenceSession(handle.path, providers=["CPUExecutionProvider"])
    got = session.run(None, {handle.input_spec.name: x.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(got, model(x, training=False).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_profile_macs_match_the_hand_count(net, capsys, fmt):
    _, paths, _ = net
    assert main(["profile", paths[fmt], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["macs"] == hand_macs() == 13904
    assert result["input_shape"][-3:] == [C_IN, H, W]


def test_int8_tflite_with_float_io_keeps_its_quantization(net, tmp_path):
    model, _, _ = net
    rng = np.random.default_rng(0)

    def calibration():
        for _ in range(16):
            yield [rng.standard_normal((1, H, W, C_IN)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    path = tmp_path / "int8.tflite"
    path.write_bytes(converter.convert())
    handle = load_model(str(path))
    parity = handle.meta["converted_from"]["parity"]
    assert parity["passed"] and parity["rel_tolerance"] == tfparity.PARITY_REL_INT8
    import onnx

    graph = onnx.load(handle.path).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") >= 1 and ops.count("DequantizeLinear") >= 3
    last = next(n for n in graph.node if n.output[0] == graph.output[0].name)
    assert last.op_type == "DequantizeLinear"
    step = float(onnx.numpy_helper.to_array(
        next(i for i in graph.initializer if i.name == last.input[1])))
    # independently, against the TFLite interpreter on fresh inputs: within 2 int8 steps of
    # the output (a rounding tie may go the other way; seen here: 0 or 1 step)
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    session = ort.InferenceSession(handle.path, providers=["CPUExecutionProvider"])
    for seed in range(5):
        x = np.random.default_rng(100 + seed).standard_normal((1, H, W, C_IN)).astype(np.float32)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        ref = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        got = session.run(None, {handle.input_spec.name: x.transpose(0, 3, 1, 2)})[0]
        assert np.abs(got - ref).max() <= 2 * step * (1 + 1e-5)


def test_second_load_uses_the_cached_conversion(net, monkeypatch):
    _, paths, _ = net
    first = load_model(paths["keras"])

    def no_conversion(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(tfload, "convert", no_conversion)
    again = load_model(paths["keras"])
    assert again.path == first.path and again.meta["converted_from"] == first.meta["converted_from"]


def test_a_cached_conversion_loads_without_importing_tensorflow(net, cache):
    """What optimize's worker processes rely on: converted once, then plain ONNX loads."""
    _, paths, _ = net
    load_model(paths["saved_model"])  # converted here (or already cached)
    code = ("import sys; from infertune.load import load_model; "
            f"h = load_model({paths['saved_model']!r}); "
            "print(h.meta['converted_from']['format'], "
            "[m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "INFERTUNE_CACHE_DIR": str(cache)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "saved_model []"


def lambda_model() -> keras.Model:
    inp = keras.Input((H, W, C_IN), name="image")
    x = keras.layers.Conv2D(C1, 1)(inp)
    x = keras.layers.Lambda(lambda t: t * 2.0 + 1.0, name="affine")(x)
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))


@keras.saving.register_keras_serializable(package="infertune_test")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_refused_unless_trust_code(tmp_path, suffix):
    model = lambda_model()
    path = tmp_path / f"lam{suffix}"
    model.save(path)
    with pytest.raises(ModelFileError, match=r"Lambda layer 'affine'.*--trust-code") as info:
        load_model(str(path))
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    handle = load_model(str(path), trust_code=True)
    assert handle.meta["converted_from"]["parity"]["passed"]
    x = np.random.default_rng(3).standard_normal((2, H, W, C_IN)).astype(np.float32)
    got = ort.InferenceSession(handle.path).run(None, {handle.input_spec.name:
                                                       x.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_custom_object_refused_unless_trust_code(tmp_path):
    inp = keras.Input((H, W, C_IN), name="image")
    path = tmp_path / "custom.keras"
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(Doubler()(inp))).save(path)
    with pytest.raises(ModelFileError, match=r"custom object Doubler from module .*--trust-code"):
        load_model(str(path))
    assert load_model(str(path), trust_code=True).meta["converted_from"]["parity"]["passed"]


@pytest.mark.parametrize("name,content,message", [
    ("bad.keras", b"PK\x03\x04 garbage", r"bad\.keras: not a valid \.keras file"),
    ("bad.h5", b"\x89HDF\r\n\x1a\n garbage", r"bad\.h5: not a valid HDF5 file"),
    ("bad.tflite", b"\x18\x00\x00\x00TFL3" + b"\xff" * 40, r"bad\.tflite: (not a valid TFLite "
                                                              r"file|the TFLite interpreter)"),
])
def test_corrupt_files_are_one_line_errors_naming_them(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(str(path))
    assert "\n" not in str(info.value)


def test_weights_only_h5_says_so(net, tmp_path):
    model, _, _ = net
    path = tmp_path / "net.weights.h5"
    model.save_weights(path)
    with pytest.raises(ModelFileError, match=r"net\.weights\.h5: this HDF5 file holds no Keras "
                                             r"model \(no model_config: weights only\?\)"):
        load_model(str(path))


def test_corrupt_saved_model_is_one_line_error(tmp_path):
    folder = tmp_path / "broken_sm"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x00\xffnot a protobuf")
    with pytest.raises(ModelFileError, match="broken_sm: TensorFlow cannot load this SavedModel"):
        load_model(str(folder))


def test_tflite_custom_op_is_refused_by_name(tmp_path):
    fn = tf.function(lambda x: tf.math.digamma(x),
                     input_signature=[tf.TensorSpec((1, H, W, C_IN), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], None)
    converter.allow_custom_ops = True
    path = tmp_path / "digamma.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(UnsupportedModel, match=r"digamma\.tflite: uses TFLite custom op\(s\) Digamma"):
        load_model(str(path))


def test_saved_model_that_writes_files_is_refused_before_it_runs(tmp_path):
    target = tmp_path / "written.txt"

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, H, W, C_IN), tf.float32)])
        def __call__(self, x):
            tf.io.write_file(str(target), tf.strings.as_string(tf.reduce_sum(x)))
            return {"y": tf.reduce_mean(x, axis=[1, 2])}

    writer = Writer()
    tf.saved_model.save(writer, str(tmp_path / "writer"),
                        signatures={"serving_default": writer.__call__})
    with pytest.raises(ModelFileError, match=r"refusing to run: .*WriteFile.*--trust-code"):
        load_model(str(tmp_path / "writer"))
    assert not target.exists()


def two_inputs() -> keras.Model:
    a, b = keras.Input((H, W, C_IN)), keras.Input((H, W, C_IN))
    return keras.Model([a, b], keras.layers.Add()([a, b]))


def vector_input() -> keras.Model:
    inp = keras.Input((16,))
    return keras.Model(inp, keras.layers.Dense(2)(inp))


def int_input() -> keras.Model:
    inp = keras.Input((H, W, C_IN), dtype="int32")
    return keras.Model(inp, keras.layers.GlobalAveragePooling2D()(keras.ops.cast(inp, "float32")))


@pytest.mark.parametrize("build,message", [
    (two_inputs, "expected one image input, found 2"),
    (vector_input, r"expected an image input of rank 4 \(N×H×W×C\), found shape \[None, 16\]"),
    (int_input, "the input is int32; only float32 inputs are supported"),
])
def test_non_image_inputs_are_refused_with_what_they_are(tmp_path, build, message):
    path = tmp_path / "other.keras"
    build().save(path)
    with pytest.raises(UnsupportedModel, match=r"other\.keras: " + message):
        load_model(str(path))


def test_captured_constants_become_constants_not_inputs(tmp_path):
    """Keras's Normalization captures its mean and variance; tf2onnx's from_function alone
    turns such captures into extra ONNX inputs (EfficientNetB0 could not run)."""
    mean, variance = np.array([0.5, 0.4, 0.3]), np.array([0.04, 0.05, 0.06])
    keras.utils.set_random_seed(2)
    inp = keras.Input((H, W, C_IN), name="image")
    x = keras.layers.Normalization(mean=mean, variance=variance)(inp)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(C1, 3)(x)))
    path = tmp_path / "normalized.keras"
    model.save(path)
    handle = load_model(str(path))
    session = ort.InferenceSession(handle.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    x = np.random.default_rng(4).uniform(0, 1, (2, H, W, C_IN)).astype(np.float32)
    got = session.run(None, {"image": x.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_dynamic_size_needs_input_size(tmp_path):
    keras.utils.set_random_seed(1)
    inp = keras.Input((None, None, C_IN), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(C1, 3)(inp))
    path = tmp_path / "dyn.keras"
    keras.Model(inp, x).save(path)
    with pytest.raises(UnsupportedModel, match="pass --input-size"):
        load_model(str(path))
    handle = load_model(str(path), input_size=(12, 10))
    assert handle.input_spec.chw == (C_IN, 12, 10)
    assert handle.meta["converted_from"]["parity"]["batch_shape"] == [2, 12, 10, C_IN]


@pytest.mark.slow
def test_bench_eval_and_optimize_accept_a_keras_file(net, tmp_path, capsys):
    _, paths, _ = net
    fast = ["--min-runs", "3", "--min-seconds", "0", "--threads", "1"]
    assert main(["bench", paths["keras"], "--runtime", "onnxruntime", "--rounds", "1",
                 *fast, "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["model"]["meta"]["converted_from"]["format"] == "keras"
    assert [r["status"] for r in bench["results"]] == ["ok"]
    assert main(["eval", paths["keras"], "--data", "sample", "--limit", "50", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["model"]["num_classes"] == CLASSES and evaluation["accuracy"]["n"] == 50
    out = tmp_path / "run"
    assert main(["optimize", paths["tflite"], "--runtimes", "onnxruntime", "--passes",
                 "fold_bn,int8_static", "--eval-size", "100", "--screen-size", "16", "--calib-size",
                 "16", "--final-rounds", "1", *fast[:4], "--threads", "1",
                 "--time-budget", "2m", "--out", str(out), "--json"]) == 0
    report = json.loads((out / "report.json").read_text())
    by_id = {c["id"]: c for c in report["candidates"]}
    assert by_id[report["baseline_id"]]["status"] == "ok"
    # INT8 built from the converted graph and measured (an untrained model on 100 samples may
    # leave no pick inside the budget at 95% confidence: that is a valid outcome, with a reason)
    assert any(c["precision"] == "int8" and c["status"] in ("ok", "screened_out")
               for c in by_id.values())
    assert report["pick"] in by_id or report["no_pick"]["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["h5", "saved_model", "tflite"])
def test_bench_and_eval_accept_each_other_format(net, capsys, fmt):
    """The Keras file's bench/eval above, for the other three formats (profile: above)."""
    _, paths, _ = net
    assert main(["bench", paths[fmt], "--runtime", "onnxruntime", "--rounds", "1",
                 "--min-runs", "3", "--min-seconds", "0", "--threads", "1", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["model"]["meta"]["converted_from"]["format"] == ("keras" if fmt == "h5" else fmt)
    assert [r["status"] for r in bench["results"]] == ["ok"]
    assert main(["eval", paths[fmt], "--data", "sample", "--limit", "30", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["model"]["num_classes"] == CLASSES and evaluation["accuracy"]["n"] == 30
