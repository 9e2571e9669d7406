"""Keras / SavedModel / TFLite inputs, the parts that need no TensorFlow: the one-line error
that names the [tf] extra when it is missing, format detection, and the safety checks that
read a file before any framework sees it. These run everywhere, with or without the extra."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile

import pytest

from infertune.cli import main
from infertune.errors import ModelFileError, UnsupportedModel
from infertune.load import _tf_safety
from infertune.load import load_model
from infertune.load import tensorflow as tfload


@pytest.fixture
def without_tf(monkeypatch):
    """find_spec answers None for the [tf] extra's modules, as on a machine without it."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name.split(".")[0] in tfload.REQUIRED_MODULES else real(name, *args, **kwargs)

    monkeypatch.setattr(tfload.importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize("name,label", [("net.keras", "Keras"), ("net.h5", "Keras"),
                                        ("net.tflite", "TFLite")])
def test_missing_extra_is_one_line_error_naming_it(without_tf, tmp_path, name, label):
    path = tmp_path / name
    path.write_bytes(b"not looked at: the extra is checked first")
    with pytest.raises(UnsupportedModel) as info:
        load_model(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: {label} models need the [tf] extra")
    assert "pip install 'infertune[tf]'" in message and "\n" not in message


def test_missing_extra_for_a_saved_model_folder_through_the_cli(without_tf, tmp_path, capsys):
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    assert main(["profile", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "TensorFlow SavedModel models need the [tf] extra" in err and len(err.splitlines()) == 1


def test_detection_is_by_suffix_or_saved_model_pb(tmp_path):
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "plain").mkdir()
    assert tfload.detect_kind(tmp_path / "sm") == "saved_model"
    assert tfload.detect_kind(tmp_path / "plain") is None
    assert [tfload.detect_kind(tmp_path / n) for n in ("a.keras", "a.H5", "a.tflite", "a.onnx")] \
        == ["keras", "keras", "tflite", None]
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(str(tmp_path / "plain"))


KERAS_LAYER = {"module": "keras.layers", "class_name": "Conv2D", "registered_name": None,
               "config": {"name": "conv", "activation": "relu",
                          "kernel_initializer": {"module": "keras.initializers",
                                                 "class_name": "GlorotUniform", "config": {}}}}


def model_config(*layers):
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": "m", "layers": list(layers)}}


def test_plain_keras_config_has_no_code():
    assert _tf_safety.code_in_keras_config(model_config(KERAS_LAYER)) == []


def test_lambda_and_custom_objects_are_found_anywhere_in_the_config():
    lam = {"class_name": "Lambda", "config": {"name": "scale", "function": {
        "class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}}}
    custom_layer = {"module": "mypkg.layers", "class_name": "Swish", "config": {"name": "s"}}
    nested_fn = {**KERAS_LAYER, "config": {**KERAS_LAYER["config"], "activation": {
        "module": "mypkg.acts", "class_name": "function", "config": "mish"}}}
    found = _tf_safety.code_in_keras_config(model_config(KERAS_LAYER, lam, custom_layer, nested_fn))
    assert found == ["Lambda layer 'scale'", "__lambda__ layer", "custom object Swish from module "
                     "'mypkg.layers'", "custom object function from module 'mypkg.acts'"]


def test_corrupt_keras_zip_is_one_line_error(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelFileError, match=r"broken\.keras: not a valid \.keras file"):
        _tf_safety.keras_config(path)
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as archive:
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(ModelFileError, match="has no config.json"):
        _tf_safety.keras_config(tmp_path / "noconfig.keras")


def test_tflite_without_its_identifier_is_refused_before_parsing(tmp_path):
    path = tmp_path / "junk.tflite"
    with pytest.raises(ModelFileError, match=r"junk\.tflite: not a TFLite file"):
        _tf_safety.check_tflite(path, b"\x1c\x00\x00\x00XXXX" + b"\x00" * 40)


def test_unsafe_tf_ops():
    ops = {"Conv2D", "Relu", "WriteFile", "ReadFile", "EagerPyFunc", "PrintV2", "AddV2",
           "TFRecordDataset", "ResizeBilinear", "DepthwiseConv2dNative"}
    assert _tf_safety.unsafe_tf_ops(ops) == ["EagerPyFunc", "PrintV2", "ReadFile",
                                             "TFRecordDataset", "WriteFile"]


def test_other_formats_never_import_tensorflow(tmp_path):
    """The dispatch in load/__init__ looks at suffixes and folders only."""
    code = ("import sys; from infertune.load import load_model; load_model('resnet18'); "
            "print([m for m in ('tensorflow', 'keras', 'tf2onnx', 'h5py') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
