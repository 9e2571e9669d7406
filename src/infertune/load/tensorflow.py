"""Keras (`.keras`, `.h5`), TensorFlow SavedModel folders and `.tflite` files -> an ONNX
ModelHandle, so that profile, bench, eval, passes and optimize treat them as any ONNX model.

Each model is converted once with tf2onnx, then checked against its own framework (Keras,
the SavedModel's signature, the TFLite interpreter) on seeded random inputs before it is
accepted. The result is cached by content (the source's bytes, --trust-code and the
converter versions) under `cache_dir()/converted/`, never beside the user's file: an optimize
run loads its model again in every worker process, and the cache makes those loads cost an
ONNX read instead of a TensorFlow import and a conversion.

The frameworks are the optional `[tf]` extra; without them a one-line error names it.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._atomic import atomic_path
from ..errors import InfertuneError, OutputError, UnsupportedModel
from ..types import ModelHandle

if TYPE_CHECKING:
    from . import LoadOptions
    from ._tf_sources import TFSource

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TFLITE_SUFFIXES = (".tflite",)
EXTRA = "tf"
REQUIRED_MODULES = ("tensorflow", "tf2onnx")
OPSET = 17
CONVERSION_VERSION = 2  # bump when what is cached (graph or record) changes
LABELS = {"keras": "Keras", "saved_model": "TensorFlow SavedModel", "tflite": "TFLite"}


def detect_kind(path: Path) -> str | None:
    """"keras", "saved_model", "tflite", or None when `path` is none of these (no import)."""
    if path.is_dir():
        return "saved_model" if (path / "saved_model.pb").is_file() else None
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        return "keras"
    return "tflite" if suffix in TFLITE_SUFFIXES else None


def require_extra(path: Path, kind: str) -> None:
    """Fails with one line naming the extra when TensorFlow or tf2onnx is not installed."""
    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise UnsupportedModel(f"{LABELS[kind]} models need the [{EXTRA}] extra ("
                               f"{' and '.join(missing)} not installed): pip install "
                               f"'infertune[{EXTRA}]'", path=path)


def load_tensorflow(path: Path, kind: str, opts: "LoadOptions") -> ModelHandle:
    """Converts (or finds the cached conversion of) `path` and loads it as ONNX."""
    from .onnx import load_onnx

    require_extra(path, kind)
    onnx_path, record = _converted(path, kind, opts)
    handle = load_onnx(onnx_path, opts)
    return ModelHandle(format="onnx", path=handle.path, input_spec=handle.input_spec,
                       name=path.name, source=str(path),
                       meta={**handle.meta, "family": "tensorflow", "converted_from": record})


def _converted(path: Path, kind: str, opts: "LoadOptions") -> tuple[Path, dict[str, Any]]:
    folder = _cache_root() / cache_key(path, opts.trust_code)
    onnx_path, record_path = folder / "model.onnx", folder / "conversion.json"
    if onnx_path.is_file() and record_path.is_file():
        return onnx_path, json.loads(record_path.read_text())
    proto, record = convert(path, kind, opts)
    try:
        _write(proto, record, onnx_path, record_path)
    except OutputError:  # an unwritable cache: keep this conversion for this process only
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="infertune-converted-"))
        onnx_path, record_path = folder / "model.onnx", folder / "conversion.json"
        _write(proto, record, onnx_path, record_path)
    return onnx_path, record


def _write(proto, record: dict[str, Any], onnx_path: Path, record_path: Path) -> None:
    with atomic_path(onnx_path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    with atomic_path(record_path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))


def _cache_root() -> Path:
    from ..machine import cache_dir

    return cache_dir() / "converted"


def cache_key(path: Path, trust_code: bool) -> str:
    """A digest of the source's bytes (every file of a folder, with its relative name), the
    trust flag and the versions of what converts it."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else "").encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    versions = {m: _version(m) for m in ("tensorflow", "tensorflow-cpu", "tf2onnx", "keras")}
    digest.update(json.dumps({"trust": trust_code, "versions": versions, "opset": OPSET,
                              "conversion": CONVERSION_VERSION}, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def convert(path: Path, kind: str, opts: "LoadOptions") -> tuple[Any, dict[str, Any]]:
    """Opens `path` in its framework, converts it and checks parity; (ModelProto, record)."""
    from ._tf_parity import check_parity
    from ._tf_sources import open_source

    source = open_source(path, kind, opts.trust_code)
    transpose = source.layout == "NHWC"
    try:
        proto = source.convert([source.input_name] if transpose else None, OPSET)
    except InfertuneError:
        raise
    except Exception as exc:  # tf2onnx raises many kinds on graphs it cannot handle
        raise UnsupportedModel(f"tf2onnx cannot convert it: {_first_line(exc)}", path=path) from None
    _check_onnx(path, proto)
    parity = check_parity(path, source, proto, transpose, opts.input_size)
    return proto, _record(source, transpose, parity)


def _check_onnx(path: Path, proto) -> None:
    """Refuses a conversion that kept TensorFlow ops tf2onnx could not translate."""
    import onnx

    foreign = sorted({f"{n.domain}:{n.op_type}" for n in proto.graph.node
                      if n.domain not in ("", "ai.onnx")})
    if foreign:
        raise UnsupportedModel(f"tf2onnx left ops without an ONNX equivalent: "
                               f"{', '.join(foreign[:5])}", path=path)
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i.name for i in proto.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise UnsupportedModel(f"the converted ONNX has {len(inputs)} inputs ({', '.join(inputs[:4])}); "
                               "expected the one image input", path=path)
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise UnsupportedModel(f"the converted ONNX fails the checker: {_first_line(exc)}",
                               path=path) from None


def _record(source: "TFSource", transpose: bool, parity: dict[str, Any]) -> dict[str, Any]:
    """What the handle's meta says about the conversion (JSON-ready)."""
    return {
        "format": source.kind,
        "converter": f"tf2onnx {_version('tf2onnx')}",
        "opset": OPSET,
        "framework": source.framework,
        "source_layout": source.layout,
        "source_input": {"name": source.input_name, "shape": list(source.input_shape)},
        "transposed": ("NHWC->NCHW: the ONNX input takes N×C×H×W (tf2onnx inputs_as_nchw; "
                       "its optimizer folds the transpose into the graph); data and runtimes "
                       "feed NCHW") if transpose else None,
        "parity": parity,
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


__all__ = ["detect_kind", "load_tensorflow", "require_extra", "cache_key", "convert"]
