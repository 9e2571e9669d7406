"""Opens a Keras file, a SavedModel folder or a TFLite file in its own framework: what its
one image input is, how to run it (the parity reference) and how tf2onnx converts it.

Imported only by `load/tensorflow.py` once the [tf] extra is known to be installed.
Safety checks (`_tf_safety`) run before any deserialisation or execution.

Layout: TensorFlow models take N×H×W×C images; the rest of infertune (data, runtimes,
profile, passes) speaks N×C×H×W. tf2onnx's `inputs_as_nchw` makes the ONNX input NCHW
with a Transpose after it, which tf2onnx's optimizer then folds into the convolutions (ONNX
Conv is NCHW anyway), so the model's maths is untouched and no transpose is left to time;
what was transposed is recorded in the handle's meta. A Keras model whose layers say `channels_first` (or a
SavedModel whose input is plainly C×H×W) is converted as it is.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ModelFileError, UnsupportedModel
from . import _tf_safety

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ logging, before its import: its errors become ours

Reference = Callable[[np.ndarray], list[np.ndarray]]
Converter = Callable[[list[str] | None, int], Any]  # (inputs_as_nchw, opset) -> ModelProto


@dataclass(frozen=True)
class TFSource:
    """A TensorFlow-family model opened in its framework.

    Attributes:
        kind: "keras", "saved_model" or "tflite".
        input_name: the name of its one image input.
        input_shape: that input's shape in the model's own layout (None where dynamic).
        layout: "NHWC" or "NCHW", the layout of `input_shape`.
        reference: runs the original model on one batch in its own layout; outputs flattened.
        convert: tf2onnx on this model, given the inputs to transpose to NCHW and the opset.
        framework: the framework that runs `reference` and its version.
    """

    kind: str
    input_name: str
    input_shape: tuple[int | None, ...]
    layout: str
    reference: Reference
    convert: Converter
    framework: str


def open_source(path: Path, kind: str, trust_code: bool) -> TFSource:
    """Dispatch on `kind` (see `load.tensorflow.detect_kind`)."""
    return {"keras": open_keras, "saved_model": open_saved_model,
            "tflite": open_tflite}[kind](path, trust_code)


def _image_input(path: Path, shapes: list[tuple], dtypes: list[str]) -> None:
    """One float32 input of rank 4, or UnsupportedModel saying what there is instead.

    float32 only: the parity check feeds random floats, and infertune's data are float32.
    """
    if len(shapes) != 1:
        raise UnsupportedModel(f"expected one image input, found {len(shapes)}", path=path)
    if len(shapes[0]) != 4:
        raise UnsupportedModel(f"expected an image input of rank 4 (N×H×W×C), found shape "
                               f"{[None if d is None else int(d) for d in shapes[0]]}", path=path)
    if dtypes[0] != "float32":
        raise UnsupportedModel(f"the input is {dtypes[0]}; only float32 inputs are supported",
                               path=path)


def _static(shape) -> tuple[int | None, ...]:
    return tuple(None if d is None or int(d) < 0 else int(d) for d in shape)


def open_keras(path: Path, trust_code: bool) -> TFSource:
    """A `.keras` or `.h5` file: config checked, then loaded with Keras's safe mode on."""
    _tf_safety.check_keras_config(path, trust_code)
    import keras
    import tensorflow as tf

    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=not trust_code)
    except Exception as exc:  # Keras raises ValueError/TypeError/OSError for bad configs
        raise ModelFileError(f"Keras cannot load it: {_tf_safety._first_line(exc)}",
                             path=path) from None
    _image_input(path, [tuple(t.shape) for t in model.inputs],
                 [str(t.dtype).replace("tf.", "") for t in model.inputs])
    shape = _static(model.inputs[0].shape)
    name = _tensor_name(model.inputs[0].name)
    formats = [layer.data_format for layer in model.layers if hasattr(layer, "data_format")]
    layout = "NCHW" if formats and formats[0] == "channels_first" else "NHWC"
    function = tf.function(lambda x: model(x, training=False))
    spec = tf.TensorSpec(shape, tf.float32, name=name)
    return TFSource("keras", name, shape, layout,
                    lambda x: _flat_outputs(model(x, training=False)),
                    _function_converter(function, spec), f"keras {keras.__version__}")


def open_saved_model(path: Path, trust_code: bool) -> TFSource:
    """A SavedModel folder: its `serving_default` signature (or its only one)."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # corrupt saved_model.pb, missing variables...
        raise ModelFileError(f"TensorFlow cannot load this SavedModel: "
                             f"{_tf_safety._first_line(exc)}", path=path) from None
    signature = loaded.signatures[_serving_signature(path, loaded)]
    _refuse_unsafe_ops(path, signature, trust_code)
    inputs = signature.structured_input_signature[1]
    _image_input(path, [tuple(spec.shape) for spec in inputs.values()],
                 [spec.dtype.name for spec in inputs.values()])
    (key, spec), = inputs.items()
    shape = _static(spec.shape)
    name = _tensor_name(key)

    def call(x):  # refers to `loaded`: its variables must outlive this function
        return signature(**{key: x}) if loaded is not None else None

    function = tf.function(call)
    return TFSource("saved_model", name, shape, _guess_layout(shape),
                    lambda x: _flat_outputs(call(tf.constant(x))),
                    _function_converter(function, tf.TensorSpec(shape, spec.dtype, name=name)),
                    f"tensorflow {tf.__version__}")


def open_tflite(path: Path, trust_code: bool) -> TFSource:
    """A `.tflite` flatbuffer: custom ops refused, run by TensorFlow's TFLite interpreter."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read it ({exc.strerror})", path=path) from None
    _tf_safety.check_tflite(path, data)
    import tensorflow as tf
    import tf2onnx

    interpreter = _interpreter(path, data)
    inputs = interpreter.get_input_details()
    _image_input(path, [tuple(d["shape"]) for d in inputs],
                 [np.dtype(d["dtype"]).name for d in inputs])
    shape = tuple(int(d) for d in inputs[0]["shape"])  # concrete (a dynamic batch reads 1)

    def convert(nchw: list[str] | None, opset: int):
        with warnings.catch_warnings():  # it opens a tf.lite.Interpreter too
            warnings.simplefilter("ignore")
            proto, _ = tf2onnx.convert.from_tflite(str(path), opset=opset, inputs_as_nchw=nchw)
        return proto

    return TFSource("tflite", inputs[0]["name"], shape, "NHWC",
                    lambda x: _run_interpreter(interpreter, x), convert,
                    f"tensorflow {tf.__version__} (tf.lite.Interpreter)")


def _interpreter(path: Path, data: bytes):
    import tensorflow as tf

    try:
        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_content=data)
            interpreter.allocate_tensors()
    except Exception as exc:  # a broken flatbuffer the op scan did not catch
        raise ModelFileError(f"the TFLite interpreter cannot load it: "
                             f"{_tf_safety._first_line(exc)}", path=path) from None
    return interpreter


def _run_interpreter(interpreter, x: np.ndarray) -> list[np.ndarray]:
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return [np.array(interpreter.get_tensor(o["index"])) for o in interpreter.get_output_details()]


def _serving_signature(path: Path, loaded) -> str:
    """The name of the signature to use: `serving_default`, else the only one."""
    signatures = list(loaded.signatures.keys())
    if "serving_default" in signatures:
        return "serving_default"
    if len(signatures) == 1:
        return signatures[0]
    raise UnsupportedModel(f"the SavedModel has no serving_default signature (it has "
                           f"{sorted(signatures) or 'none'})", path=path)


def _refuse_unsafe_ops(path: Path, signature, trust_code: bool) -> None:
    graph = signature.graph.as_graph_def()
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    unsafe = _tf_safety.unsafe_tf_ops(ops)
    if unsafe and not trust_code:
        raise ModelFileError(f"refusing to run: the serving signature uses {', '.join(unsafe[:5])} "
                             "(files, Python or the network); pass --trust-code if you trust it",
                             path=path)


def _guess_layout(shape: tuple[int | None, ...]) -> str:
    """NCHW only when dim 1 looks like channels and the last dim does not (TF's default is NHWC)."""
    channels = (1, 2, 3, 4)
    return "NCHW" if shape[1] in channels and shape[3] not in channels else "NHWC"


def _function_converter(function, spec) -> Converter:
    """tf2onnx on a traced tf.function whose first input is the image.

    `tf2onnx.convert.from_function` takes every input of the concrete function as a model
    input, including tensors the function captured (Keras's Normalization layer captures its
    mean and variance): the ONNX model then asks for them at run time. Freezing it here with
    only the image as input turns those captures into constants.
    """
    def convert(nchw: list[str] | None, opset: int):
        import tensorflow as tf
        from tf2onnx import convert as tf2onnx_convert
        from tf2onnx import tf_loader

        concrete = function.get_concrete_function(spec)
        inputs = [concrete.inputs[0].name]  # the signature's argument; captures come after it
        outputs = [t.name for t in concrete.outputs if t.dtype != tf.resource]
        rename = tf2onnx_convert.tensor_names_from_structed(concrete, inputs, outputs)
        with tf.device("/cpu:0"):
            frozen = tf_loader.from_function(concrete, inputs, outputs)
        proto, _ = tf2onnx_convert.from_graph_def(
            frozen, name=concrete.name, input_names=inputs, output_names=outputs, opset=opset,
            inputs_as_nchw=nchw, tensors_to_rename=rename)
        return proto

    return convert


def _flat_outputs(outputs) -> list[np.ndarray]:
    import tensorflow as tf

    return [np.asarray(t) for t in tf.nest.flatten(outputs)]


def _tensor_name(name: str) -> str:
    """A TensorFlow tensor name usable as a placeholder name ("input_1:0" -> "input_1")."""
    cleaned = "".join(c if c.isalnum() or c in "_-." else "_" for c in name.split(":")[0])
    return cleaned or "input"
