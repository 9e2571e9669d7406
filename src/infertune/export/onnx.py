"""Export a ModelHandle to an ONNX file, checked against the model it came from.

The file appears at `out` only once it is complete and has passed the check: the torch
exporter writes into a private staging folder next to `out` (it may scatter external-data
files there), the final proto is written through `atomic_path` and checked under its
temporary name, and only then renamed. A failure leaves neither `out` nor temporary files.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from .._atomic import atomic_path, check_writable, output_error
from ..errors import ConfigError, UnsupportedModel
from ..types import InputSpec, ModelHandle

MIN_OPSET = 17
# protobuf cannot serialise a message of 2 GiB or more; keep a margin for the graph itself.
_PROTO_LIMIT = 2**31 - 2**24
# ORT and PyTorch use different kernels (im2col/Winograd, FMA order, blocked layouts), so the
# float32 outputs differ by rounding that grows with depth: ~1e-5 relative for a ResNet-50.
# 1e-3 of the output's magnitude leaves ~100x margin yet catches a wrong op (errors ~1e-1).
REL_TOLERANCE = 1e-3
_SEED = 0


def export_onnx(handle: ModelHandle, out: str | os.PathLike, *, opset: int = MIN_OPSET,
                input_size: tuple[int, int] | None = None, check: bool = True) -> dict[str, Any]:
    """Writes `handle` as an ONNX file at `out` with a dynamic batch dimension.

    Args:
        handle: a "torch" handle (eager or TorchScript) or an "onnx" handle (re-saved,
            upgraded to `opset` when older; the source file is never touched).
        out: the destination file.
        opset: the ONNX opset to export to (17 or newer).
        input_size: (height, width) of the example input instead of the handle's.
        check: run the ONNX checker and compare ONNX Runtime's outputs with the source model
            at batch 1 and 2 on seeded random input.

    Returns:
        path, opset, bytes, external_data, max_abs_diff, cosine, tolerance, checked_batches,
        inputs and outputs (names and shapes, symbolic dims as strings).

    Raises:
        ConfigError: an opset older than 17.
        UnsupportedModel: the exporter fails (the message is its first line), or the exported
            model fails the checker or does not match the source within tolerance.
    """
    if opset < MIN_OPSET:
        raise ConfigError(f"opset must be {MIN_OPSET} or newer, not {opset}")
    out = Path(out)
    check_writable(out)  # a read-only or missing folder fails now, not after the export
    spec = handle.input_spec if input_size is None else handle.input_spec.with_hw(*input_size)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".stage", dir=out.parent))
    try:
        if handle.format == "torch":
            proto = torch_to_proto(handle.obj, spec, opset, stage)
        else:
            proto = onnx_to_proto(Path(handle.path), opset)
        checker = (lambda path: check_parity(path, handle, spec)) if check else (lambda path: {})
        external, parity = write_checked(proto, out, stage, checker)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return summary(proto, out, external, parity)


# --------------------------------------------------------------------------- producing the proto


def torch_to_proto(model, spec: InputSpec, opset: int, stage: Path):
    """Exports an nn.Module (eager or TorchScript) with the legacy exporter; returns the proto."""
    import onnx
    import torch

    from ..tensors import tensors_in

    dummy = torch_input(model, spec, batch=1, seed=None)
    with torch.no_grad():
        outputs = tensors_in(_forward(model, dummy))
    names = output_names(model, len(outputs))
    dynamic = {spec.name: {0: "batch"},
               **{n: {0: "batch"} for n, t in zip(names, outputs) if t.dim() > 0}}
    target = stage / "export.onnx"
    try:
        with quiet():
            # The legacy TorchScript-based exporter (dynamo=False): it is fast, needs no
            # onnxscript, and takes TorchScript modules as well as eager ones.
            torch.onnx.export(model, (dummy,), str(target), dynamo=False, opset_version=opset,
                              input_names=[spec.name], output_names=names,
                              dynamic_axes=dynamic, do_constant_folding=True)
    except Exception as exc:
        raise UnsupportedModel(f"cannot export to ONNX: {first_line(exc)}") from None
    proto = onnx.load(str(target))  # pulls in any external-data files from the stage
    static_output_dims(proto, [tuple(t.shape) for t in outputs])
    return proto


def static_output_dims(proto, shapes: list[tuple[int, ...]]) -> None:
    """Writes the concrete sizes of every output dimension but the batch into the graph.

    The legacy exporter's shape inference can leave them symbolic with misleading names (a
    detector's 13×13 head came out as ['batch', 255, 'batch', 'Conv…_dim_3'], claiming H
    equals the batch). The input's H×W is fixed at export, so these sizes are too.
    """
    for value, shape in zip(proto.graph.output, shapes):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            continue
        for dim, size in list(zip(dims, shape))[1:]:
            if dim.HasField("dim_param"):
                dim.dim_value = int(size)  # setting the value clears the symbolic name


def output_names(model, count: int) -> list[str]:
    """The model's own output names when it declares them (a Darknet detector: one per head,
    "yolo_16"), else "output", "output_1", ..."""
    named = getattr(model, "output_names", None)
    if isinstance(named, (list, tuple)) and len(named) == count and len(set(named)) == count:
        return [str(name) for name in named]
    return ["output"] + [f"output_{i}" for i in range(1, count)]


def onnx_to_proto(path: Path, opset: int):
    """Loads an ONNX file (with its external data) and upgrades an older opset."""
    import onnx

    from ..load.onnx import read_onnx

    model = read_onnx(path)  # external-data locations checked to stay beside the model
    current = opset_of(model)
    if current is not None and current < opset:
        try:
            model = onnx.version_converter.convert_version(model, opset)
        except Exception as exc:
            raise UnsupportedModel(f"cannot convert opset {current} to {opset}: "
                                   f"{first_line(exc)}", path=path) from None
    return model


def _forward(model, x):
    try:
        return model(x)
    except Exception as exc:
        raise UnsupportedModel(f"the model's forward at input {list(x.shape)} failed: "
                               f"{first_line(exc)}") from None


def torch_input(model, spec: InputSpec, *, batch: int, seed: int | None):
    """Zeros (seed None) or seeded standard-normal input on the model's device and float dtype."""
    import numpy as np
    import torch

    shape = (batch, *spec.chw)
    tensors = list(model.parameters()) + list(model.buffers())
    floats = [t for t in tensors if t.is_floating_point()]
    dtype = floats[0].dtype if floats else getattr(torch, spec.dtype, torch.float32)
    device = tensors[0].device if tensors else torch.device("cpu")
    if seed is None:
        return torch.zeros(shape, dtype=dtype, device=device)
    data = np.random.default_rng(seed + batch).standard_normal(shape).astype(np.float32)
    return torch.from_numpy(data).to(device=device, dtype=dtype)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences the exporter's deprecation/user warnings and its prints.

    On failure the exporter dumps the whole TorchScript graph from C++ (`_jit_onnx_log`), past
    Python's sys.stderr, so the process's file descriptors 1 and 2 are pointed at /dev/null
    for the duration (the message we raise keeps the error's first line).
    """
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), _fds_to_devnull():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _fds_to_devnull() -> Iterator[None]:
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(devnull, fd)
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


# --------------------------------------------------------------------------- writing


def write_checked(proto, out: Path, stage: Path,
                  check: Callable[[Path], dict]) -> tuple[bool, dict]:
    """Writes `proto` to `out` (atomically), running `check` on the file before it is renamed.

    Returns:
        (whether the weights went to an external `<out>.data` file, the check's result).
    """
    import onnx

    if _byte_size(proto) < _PROTO_LIMIT:
        with atomic_path(out) as tmp:
            onnx.save(proto, str(tmp))
            return False, check(tmp)
    # Too large for one protobuf: weights go to `<out>.data` beside it. Both are written and
    # checked in the stage, then moved in (data first, so `out` never names missing data).
    data_name = f"{out.name}.data"
    staged = stage / out.name
    try:
        onnx.save(proto, str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=data_name, size_threshold=1024)
    except OSError as exc:  # full disk: one line naming the output, not a traceback
        raise output_error(out, exc) from None
    result = check(staged)
    try:
        os.replace(stage / data_name, out.parent / data_name)
        os.replace(staged, out)
    except OSError as exc:
        raise output_error(out, exc) from None
    return True, result


def _byte_size(proto) -> int:
    try:
        return proto.ByteSize()
    except Exception:  # some protobuf builds refuse to size a message past 2 GiB
        return _PROTO_LIMIT


# --------------------------------------------------------------------------- checking


def check_parity(path: Path, handle: ModelHandle, spec: InputSpec) -> dict[str, Any]:
    """ONNX checker, then ONNX Runtime vs the source model at batch 1 and 2 (seeded input).

    Raises:
        UnsupportedModel: the checker fails, ORT cannot run the file, or an output differs by
            more than REL_TOLERANCE x max(1, max|reference|).
    """
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise UnsupportedModel(f"the exported model fails the ONNX checker: "
                               f"{first_line(exc)}") from None
    session = ort_session(path, "the exported model")
    reference = _torch_reference(handle.obj, spec) if handle.format == "torch" else \
        _ort_reference(ort_session(Path(handle.path), "the source model"), spec)
    dim0 = session.get_inputs()[0].shape[0]
    batches = [dim0] if isinstance(dim0, int) and dim0 > 0 else [1, 2]
    worst = {"max_abs_diff": 0.0, "cosine": 1.0, "tolerance": 0.0, "checked_batches": []}
    for batch in batches:
        expected = reference(batch)
        if expected is None and batch != batches[0]:
            continue  # the source model itself only runs at batch 1
        got = _ort_run(session, spec, batch)
        diff, cosine, tolerance = compare(expected, got, batch)
        worst["max_abs_diff"] = max(worst["max_abs_diff"], diff)
        worst["cosine"] = min(worst["cosine"], cosine)
        worst["tolerance"] = max(worst["tolerance"], tolerance)
        worst["checked_batches"].append(batch)
    return worst


def compare(expected: list | None, got: list, batch: int) -> tuple[float, float, float]:
    """(max |diff|, cosine, tolerance) over all outputs; raises UnsupportedModel past tolerance."""
    import numpy as np

    if expected is None:
        raise UnsupportedModel(f"the source model does not run at batch {batch}")
    if len(expected) != len(got):
        raise UnsupportedModel(f"the ONNX model has {len(got)} outputs, the source {len(expected)}")
    for ref, out in zip(expected, got):
        if np.shape(ref) != np.shape(out):
            raise UnsupportedModel(f"output shape {list(np.shape(out))} differs from the source's "
                                   f"{list(np.shape(ref))} at batch {batch}")
    ref = np.concatenate([np.asarray(r, np.float64).ravel() for r in expected])
    out = np.concatenate([np.asarray(o, np.float64).ravel() for o in got])
    diff = float(np.max(np.abs(ref - out))) if ref.size else 0.0
    norms = float(np.linalg.norm(ref) * np.linalg.norm(out))
    cosine = float(ref @ out / norms) if norms > 0 else 1.0
    tolerance = REL_TOLERANCE * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    if not diff <= tolerance:  # also catches NaN
        raise UnsupportedModel(f"ONNX Runtime output differs from the source model at batch "
                               f"{batch}: max |diff| {diff:.3g} > tolerance {tolerance:.3g} "
                               f"(cosine {cosine:.6f})")
    return diff, cosine, tolerance


def ort_session(path: Path, what: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT warns about unused initializers etc.
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UnsupportedModel(f"ONNX Runtime cannot open {what}: {first_line(exc)}") from None


def _ort_run(session, spec: InputSpec, batch: int) -> list:
    import numpy as np

    data = np.random.default_rng(_SEED + batch).standard_normal((batch, *spec.chw))
    dtype = {"tensor(float16)": np.float16, "tensor(double)": np.float64}.get(
        session.get_inputs()[0].type, np.float32)
    try:
        return session.run(None, {session.get_inputs()[0].name: data.astype(dtype)})
    except Exception as exc:
        raise UnsupportedModel(f"ONNX Runtime fails on the exported model at batch {batch}: "
                               f"{first_line(exc)}") from None


def _torch_reference(model, spec: InputSpec) -> Callable[[int], list | None]:
    """batch -> the torch outputs as numpy arrays (None if the model fails at that batch)."""
    import torch

    from ..tensors import tensors_in

    def run(batch: int):
        x = torch_input(model, spec, batch=batch, seed=_SEED)
        try:
            with torch.inference_mode():
                return [t.float().cpu().numpy() for t in tensors_in(model(x))]
        except Exception:
            return None

    return run


def _ort_reference(session, spec: InputSpec) -> Callable[[int], list | None]:
    def run(batch: int):
        try:
            return _ort_run(session, spec, batch)
        except UnsupportedModel:
            return None

    return run


# --------------------------------------------------------------------------- summary


def summary(proto, out: Path, external: bool, parity: dict) -> dict[str, Any]:
    size = out.stat().st_size
    if external:
        size += (out.parent / f"{out.name}.data").stat().st_size
    return {
        "path": str(out), "opset": opset_of(proto), "bytes": size, "external_data": external,
        "max_abs_diff": parity.get("max_abs_diff"), "cosine": parity.get("cosine"),
        "tolerance": parity.get("tolerance"), "checked_batches": parity.get("checked_batches", []),
        "inputs": _io(proto.graph, proto.graph.input),
        "outputs": _io(proto.graph, proto.graph.output),
    }


def _io(graph, values) -> list[dict[str, Any]]:
    initializers = {init.name for init in graph.initializer}
    return [{"name": v.name, "shape": [d.dim_value if d.HasField("dim_value") else d.dim_param
                                      for d in v.type.tensor_type.shape.dim]}
            for v in values if v.name not in initializers]


def opset_of(proto) -> int | None:
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else None


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
