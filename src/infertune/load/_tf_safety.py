"""What a TensorFlow-family file may contain before anything in it is deserialised or run.

Keras files carry a JSON config that names the classes to build. A `Lambda` layer stores
marshalled Python bytecode, and a config entry whose `module` is not Keras's own asks for a
user module to be imported: both run code from the file, so both are refused unless the
user passes --trust-code. The config is read as plain JSON (from the `.keras` zip or the
`.h5` attributes) before Keras sees it, so the refusal never depends on Keras's own
`safe_mode` covering every case.

SavedModels are graphs, but TensorFlow has ops that read and write files or call back into
Python; the ops reachable from the serving signature are listed and those are refused unless
--trust-code (the reference run of the parity check would execute them).

TFLite files may use custom ops (and "Flex" ops that embed full TensorFlow kernels), which
neither ONNX nor a plain TFLite interpreter can run: refused with their names.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

from ..errors import ModelFileError, UnsupportedModel

# Layer classes whose config holds Python code (Keras 3 and tf.keras 2 names).
CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__"})

# TensorFlow op types that touch files, the network, Python or summaries. Matched as a
# substring of the op type (ReadFile, WriteFile, TFRecordDataset, EagerPyFunc, PrintV2...).
UNSAFE_TF_OPS = re.compile(r"File|Reader|Dataset|Iterator|Save|Restore|Checkpoint|PyFunc|Print"
                           r"|Summary|Sql|Rpc|Socket|Send|Recv|Debug|Record|Audio|Video")

TFLITE_IDENTIFIER = b"TFL3"
_TFLITE_CUSTOM = 32  # BuiltinOperator.CUSTOM in the TFLite schema


def keras_config(path: Path) -> dict[str, Any]:
    """The model config of a `.keras` zip or a Keras `.h5` file, as parsed JSON.

    Raises:
        ModelFileError: not a readable Keras file (corrupt zip or HDF5, no model config).
    """
    text = _keras_zip_config(path) if path.suffix.lower() == ".keras" else _keras_h5_config(path)
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ModelFileError(f"the Keras model config is not valid JSON ({exc})", path=path) from None
    if not isinstance(config, dict):
        raise ModelFileError("the Keras model config is not a JSON object", path=path)
    return config


def _keras_zip_config(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read("config.json").decode("utf-8")
    except KeyError:
        raise ModelFileError("not a Keras model: the .keras archive has no config.json",
                             path=path) from None
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as exc:
        raise ModelFileError(f"not a valid .keras file ({_first_line(exc)})", path=path) from None


def _keras_h5_config(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as exc:
        raise ModelFileError(f"not a valid HDF5 file ({_first_line(exc)})", path=path) from None
    if raw is None:
        raise ModelFileError("this HDF5 file holds no Keras model (no model_config: weights "
                             "only?)", path=path)
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every serialised object (a dict with a class_name) anywhere in a Keras config."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def code_in_keras_config(config: dict[str, Any]) -> list[str]:
    """What in the config would run code: Lambda layers and classes from non-Keras modules."""
    found = []
    for obj in _objects(config):
        name = str(obj.get("class_name"))
        module = obj.get("module")
        config = obj.get("config")
        label = config.get("name") if isinstance(config, dict) else None
        if name in CODE_LAYERS:
            found.append(f"{name} layer {label!r}" if label else f"{name} layer")
        elif isinstance(module, str) and module != "keras" and not module.startswith("keras."):
            found.append(f"custom object {name} from module {module!r}")
    return list(dict.fromkeys(found))


def check_keras_config(path: Path, trust_code: bool) -> dict[str, Any]:
    """The config, after refusing code in it unless `trust_code` (one-line ModelFileError)."""
    config = keras_config(path)
    found = code_in_keras_config(config)
    if found and not trust_code:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise ModelFileError(f"refusing to load: the model contains {shown}, which runs Python "
                             "code from the file; pass --trust-code if you trust it", path=path)
    return config


def unsafe_tf_ops(op_types: set[str]) -> list[str]:
    """The op types (sorted) that touch files, the network or Python."""
    return sorted(op for op in op_types if UNSAFE_TF_OPS.search(op))


def tflite_custom_ops(path: Path, data: bytes) -> list[str]:
    """The custom (and Flex) op names a TFLite flatbuffer uses.

    Raises:
        ModelFileError: not a TFLite flatbuffer (wrong identifier or unparsable).
    """
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError("not a TFLite file (no TFL3 flatbuffer identifier)", path=path)
    from tf2onnx.tflite.Model import Model

    try:
        model = Model.GetRootAsModel(data, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
        custom = [(c.CustomCode() or b"?").decode("utf-8", "replace") for c in codes
                  if max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == _TFLITE_CUSTOM]
    except Exception as exc:  # flatbuffers raises struct.error, IndexError... on bad offsets
        raise ModelFileError(f"not a valid TFLite file ({_first_line(exc)})", path=path) from None
    return sorted(set(custom))


def check_tflite(path: Path, data: bytes) -> None:
    """Refuses TFLite files with custom ops (UnsupportedModel naming them)."""
    custom = tflite_custom_ops(path, data)
    if custom:
        raise UnsupportedModel(f"uses TFLite custom op(s) {', '.join(custom[:5])}: neither ONNX "
                               "nor the TFLite interpreter can run them here", path=path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
