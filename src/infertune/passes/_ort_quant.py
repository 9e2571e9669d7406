"""ONNX Runtime's quantizer, the INT8 engine for ONNX models (int8_static, int8_dynamic,
mixed_precision, sensitivity). Imported only when one of them runs (it imports onnx and
onnxruntime at the top).

Why ORT's quantizer and not our own: it is written by the runtime that executes the result,
emits the QDQ form its CPU kernels fuse into integer convolutions, and already has the
calibration methods (min-max, percentile, entropy) and per-channel weights we expose. This
module only feeds it our data and chooses its settings:

- QDQ format: ORT's recommended format since 1.11; OpenVINO and TensorRT read it too.
- S8S8 (int8 activations, symmetric; int8 weights): ORT's default. On this VNNI CPU (Zen 4)
  S8S8 and U8S8 ran Darknet19_448 equally fast (22.6 vs 23.1 ms, 2 threads, one run), and
  symmetric activations need no zero point. `activations="uint8"` stays available for CPUs
  without VNNI, where ORT's own guidance is U8S8.
- `quant_pre_process` first: shape inference plus ORT's basic graph optimisations, which fold
  BatchNormalization into Conv (Darknet exports keep BN nodes), so the quantizer sees one Conv
  per layer. Layer names are the pre-processed graph's node names.
- Softmax stays float by default: ORT gives its output the fixed range [0, 1] (a step of
  1/127 with int8 activations, 1/255 with uint8), so small probabilities become 0
  (measured: every output of a random-weight 1000-class Darknet19_448 became 0). Kept
  float, it costs a DequantizeLinear before it, which shows on a small model (ref-large:
  0.86x ORT's default INT8, which quantizes it). `softmax=int8` quantizes it where its
  range allows (`softmax_refusal`): the search measures both and keeps what its budget
  accepts.
- 7-bit weights (ORT's `reduce_range`) where this CPU's INT8 sums saturate (x86 without
  VNNI/AMX, `machine.int8_sums_saturate`): with 8-bit weights a small CNN's S8S8 QDQ fell
  to 11 dB SQNR on an AVX2-only Zen 3 EPYC, 44 dB with `reduce_range` (44 dB unreduced on
  VNNI CPUs, where the full range is kept). `reduce_range=on/off` overrides the choice.
- Calibration runs in strides of one batch (ORT's `CalibStridedMinMax`): the histogram
  methods otherwise keep every intermediate output of every sample in memory at once
  (~100 MB per 448x448 image for Darknet19).
- Calibrated ranges are cached in the workdir (ORT's `calibration_cache_path`), keyed by the
  pre-processed model and the data, so sensitivity analysis and mixed precision calibrate once.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_dynamic, quantize_static)

from ..errors import UnsupportedModel
from ..types import ModelHandle
from .base import PassContext, workfile

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
           "entropy": CalibrationMethod.Entropy}
CALIB_BATCH = 4  # samples per calibration run: bounds the intermediate outputs held at once
KEEP_FLOAT_OPS = {"Softmax": "ORT quantizes Softmax outputs with the fixed range [0, 1] "
                             "(step 1/127 with int8 activations): small probabilities would "
                             "become 0 (softmax=int8 quantizes it where its range allows)"}
# A quantized Softmax must keep each sample's decision: its top probability at least
# SOFTMAX_MIN_STEPS quantization steps (so it neither rounds to 0 nor ties its neighbours
# at the bottom of the scale) in at least SOFTMAX_MIN_SHARE of the checked calibration rows.
SOFTMAX_MIN_STEPS = 2
SOFTMAX_MIN_SHARE = 0.99
SOFTMAX_CHECK_SAMPLES = 64  # calibration samples run through the float model for the check


@dataclass(frozen=True)
class OrtSettings:
    """What quantize_static is asked for (see the module docstring for the defaults)."""

    method: str = "minmax"
    per_channel: bool = True
    activations: str = "int8"
    samples: int = 128
    reduce_range: bool = False


def reduce_range(asked: str) -> tuple[bool, str]:
    """Whether to quantize weights to 7 bits, and why: `asked` on/off, or auto (on exactly
    where this CPU's INT8 sums saturate)."""
    from ..machine import INT8_DOT_FLAGS, int8_sums_saturate

    if asked != "auto":
        return asked == "on", f"reduce_range={asked} asked for"
    if int8_sums_saturate():
        return True, (f"this x86 CPU has no {'/'.join(INT8_DOT_FLAGS)}: its INT8 kernels add "
                      "product pairs in saturating 16-bit sums, so weights use 7 bits")
    return False, "this CPU's INT8 dot products accumulate in 32 bits: full 8-bit weights"


class DatasetReader(CalibrationDataReader):
    """ORT's one-method feed protocol over our Dataset: batches of CALIB_BATCH samples;
    `set_range` lets ORT calibrate stride by stride."""

    def __init__(self, x: np.ndarray, input_name: str):
        self._batches = [x[i:i + CALIB_BATCH] for i in range(0, len(x), CALIB_BATCH)]
        self._name, self._range, self._next = input_name, (0, len(self._batches)), 0

    def __len__(self) -> int:
        return len(self._batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._range, self._next = (start_index, min(end_index, len(self._batches))), start_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._range[1]:
            return None
        self._next += 1
        return {self._name: np.ascontiguousarray(self._batches[self._next - 1])}


def calibration_x(ctx: PassContext, samples: int) -> np.ndarray:
    """The first `samples` calibration inputs (float32 NCHW)."""
    return np.asarray(ctx.calibration.x[:samples], dtype=np.float32)


def file_digest(path: str | Path, extra: Iterable[Any] = ()) -> str:
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    for item in extra:
        h.update(repr(item).encode())
    return h.hexdigest()


def prepare(model: ModelHandle, ctx: PassContext) -> tuple[Path, dict[str, Any]]:
    """The pre-processed model (cached per source file in the workdir) and what changed."""
    out = ctx.workdir / "quant-prep" / f"{file_digest(model.path)}.onnx"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.onnx")
        note = _pre_process(Path(model.path), tmp)
        tmp.replace(out)
        if note:
            out.with_suffix(".note").write_text(note)
    note_file = out.with_suffix(".note")
    before, after = op_counts(onnx.load(str(model.path), load_external_data=False)), \
        op_counts(onnx.load(str(out), load_external_data=False))
    removed = {op: before[op] - after.get(op, 0) for op in before if before[op] > after.get(op, 0)}
    return out, {"removed_ops": removed,
                 "note": note_file.read_text() if note_file.exists() else None}


def _pre_process(source: Path, out: Path) -> str | None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    for skip_symbolic in (False, True):
        try:
            with quiet(), _scratch_cwd(out.parent):
                quant_pre_process(str(source.resolve()), str(out.resolve()),
                                  skip_symbolic_shape=skip_symbolic)
            return None if not skip_symbolic else "symbolic shape inference skipped (it failed)"
        except Exception:
            continue
    shutil.copyfile(source, out)
    return "ORT's quant_pre_process failed on this model; quantized without it"


@contextlib.contextmanager
def _scratch_cwd(parent: Path) -> Iterator[None]:
    """Runs the block in a fresh folder under `parent`, removed afterwards: when ORT's
    symbolic shape inference fails it saves `sym_shape_infer_temp.onnx` and a `<uuid>.data`
    into the *current* folder (onnxruntime/tools/symbolic_shape_infer.py), which would
    litter the user's working directory."""
    before = os.getcwd()
    scratch = tempfile.mkdtemp(prefix=".ort-shape-", dir=parent)
    os.chdir(scratch)
    try:
        yield
    finally:
        os.chdir(before)
        shutil.rmtree(scratch, ignore_errors=True)


def op_counts(proto: onnx.ModelProto) -> dict[str, int]:
    return dict(Counter(n.op_type for n in proto.graph.node))


def weighted_layers(path: str | Path) -> list[dict[str, str]]:
    """The quantizable layers (ops with weights), in graph order: name and op type."""
    proto = onnx.load(str(path), load_external_data=False)
    return [{"layer": n.name, "op": n.op_type} for n in proto.graph.node
            if n.op_type in WEIGHTED_OPS and n.name]


def default_float(path: str | Path, quantize_softmax: bool = False) -> list[dict[str, str]]:
    """Nodes kept float whatever the config says, with the reason: KEEP_FLOAT_OPS (Softmax
    unless `quantize_softmax`), and Pads that pad with -FLT_MAX (Darknet's maxpool padding):
    calibrated, their range would reach -3.4e38 and the int8 scale would round every
    activation to 0. The MaxPool after such a Pad drops the padding, so the next layer is
    still quantized from the MaxPool's output."""
    proto = onnx.load(str(path), load_external_data=False)
    values = _constant_values(proto.graph)
    float_ops = {op: why for op, why in KEEP_FLOAT_OPS.items()
                 if not (quantize_softmax and op == "Softmax")}
    kept = [{"layer": n.name, "op": n.op_type, "reason": float_ops[n.op_type]}
            for n in proto.graph.node if n.op_type in float_ops and n.name]
    kept += [{"layer": n.name, "op": "Pad", "reason": "pads with -FLT_MAX (a maxpool's "
                                                     "padding): no int8 range can hold it"}
             for n in proto.graph.node if n.op_type == "Pad" and n.name
             and _pad_value(n, values) is not None and _pad_value(n, values) < -1e30]
    return kept


def softmax_refusal(path: str | Path, x: np.ndarray, activations: str) -> str | None:
    """Why the Softmax outputs of the model at `path` cannot be quantized on this data, or
    None. Runs the float model on the first SOFTMAX_CHECK_SAMPLES of `x` and checks every
    Softmax row against SOFTMAX_MIN_STEPS / SOFTMAX_MIN_SHARE; ORT fixes a Softmax output's
    range to [0, 1], so its step is 1/127 (symmetric int8) or 1/255 (uint8)."""
    import onnxruntime as ort

    proto = onnx.load(str(path))
    nodes = [n for n in proto.graph.node if n.op_type == "Softmax"]
    if not nodes:
        return "the model has no Softmax: softmax=int8 would change nothing"
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    shown = {o.name for o in proto.graph.output}
    for node in nodes:
        if node.output[0] not in shown:
            proto.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [n.output[0] for n in nodes]
    feed = input_name(path)
    step = 1.0 / (127 if activations == "int8" else 255)
    tops: list[np.ndarray] = []
    sample = np.asarray(x[:SOFTMAX_CHECK_SAMPLES], dtype=np.float32)
    for i in range(0, len(sample), CALIB_BATCH):
        outs = session.run(names, {feed: np.ascontiguousarray(sample[i:i + CALIB_BATCH])})
        for node, out in zip(nodes, outs):
            tops.append(_softmax_rows(np.asarray(out), node, opset).max(axis=1))
    top = np.concatenate(tops)
    share = float(np.mean(top >= SOFTMAX_MIN_STEPS * step))
    if share >= SOFTMAX_MIN_SHARE:
        return None
    return (f"its range does not allow a quantized Softmax: with ORT's fixed [0, 1] range "
            f"(step {step:.4f}) only {share:.0%} of {len(top)} Softmax rows on "
            f"{len(sample)} calibration samples keep their top probability at "
            f"{SOFTMAX_MIN_STEPS} steps or more (needs {SOFTMAX_MIN_SHARE:.0%})")


def _softmax_rows(out: np.ndarray, node: onnx.NodeProto, opset: int) -> np.ndarray:
    """A Softmax output as rows of one distribution each (opset < 13 normalises over the
    dims from `axis` on, flattened; opset ≥ 13 over `axis` alone)."""
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1 if opset < 13 else -1)
    axis = axis % out.ndim if out.ndim else 0
    if opset < 13:
        return out.reshape(int(np.prod(out.shape[:axis], dtype=np.int64)), -1)
    return np.moveaxis(out, axis, -1).reshape(-1, out.shape[axis])


def _constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _pad_value(node: onnx.NodeProto, values: dict[str, np.ndarray]) -> float | None:
    """A Pad's constant value (input 2 since opset 11), or None when not a known constant."""
    if len(node.input) < 3 or not node.input[2] or node.input[2] not in values:
        return None
    value = np.asarray(values[node.input[2]])
    return float(value.ravel()[0]) if value.size else None


def input_name(path: str | Path) -> str:
    proto = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in proto.graph.initializer}
    return next(i.name for i in proto.graph.input if i.name not in inits)


def cache_path(prepped: Path, x: np.ndarray, settings: OrtSettings, ctx: PassContext) -> Path:
    """Where the calibrated ranges of (model, data, method) live: the run's shared cache
    when there is one, else the workdir. The prepared model's name is its content digest
    (`prepare`), so the key names the model, the data and the method exactly."""
    from ._result_cache import data_digest

    data = data_digest(x)
    sym = settings.activations == "int8"
    key = f"{prepped.stem}-{data}-{settings.method}-{'sym' if sym else 'asym'}"
    path = (ctx.cache_dir or ctx.workdir) / "quant-calib" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def private_cache(shared: Path, ctx: PassContext) -> Iterator[Path]:
    """A cache file only this pipeline writes: seeded from `shared` when that exists, and
    published back to it atomically (rename) when it did not — so pipelines running at the
    same time (Ray) never read a half-written cache."""
    mine = workfile(ctx, shared.stem, ".calib.json")
    if shared.exists():
        shutil.copyfile(shared, mine)
    yield mine
    if mine.exists() and not shared.exists():
        tmp = shared.with_name(f".{shared.name}.{mine.parent.parent.name}.tmp")
        shutil.copyfile(mine, tmp)
        tmp.replace(shared)


def quantize_qdq(prepped: Path, out: Path, x: np.ndarray, settings: OrtSettings,
                 ctx: PassContext, *, exclude: Iterable[str] = (),
                 only: Iterable[str] | None = None) -> None:
    """quantize_static to QDQ; `exclude` stays float; `only` (if given) alone is quantized."""
    act = QuantType.QInt8 if settings.activations == "int8" else QuantType.QUInt8
    reader = DatasetReader(x, input_name(prepped))
    extra = {"CalibStridedMinMax": 1, "ActivationSymmetric": settings.activations == "int8"}
    try:
        with quiet(), private_cache(cache_path(prepped, x, settings, ctx), ctx) as cache:
            quantize_static(str(prepped), str(out), reader, quant_format=QuantFormat.QDQ,
                            per_channel=settings.per_channel, reduce_range=settings.reduce_range,
                            activation_type=act,
                            weight_type=QuantType.QInt8,
                            calibrate_method=METHODS[settings.method],
                            nodes_to_exclude=list(exclude),
                            nodes_to_quantize=list(only) if only is not None else None,
                            extra_options=extra,
                            calibration_cache_path=str(cache))
    except Exception as exc:
        raise UnsupportedModel(f"ONNX Runtime's quantizer failed: {_first_line(exc)}") from None


def quantize_dyn(prepped: Path, out: Path, *, per_channel: bool, exclude: Iterable[str],
                 op_types: Iterable[str]) -> None:
    """quantize_dynamic: int8 weights; activations quantized per call by the kernels.

    Weights are uint8: ORT's CPU ConvInteger takes uint8 x uint8 only (an int8-weight
    ConvInteger has no CPU kernel), and MatMulInteger accepts the same.
    """
    try:
        with quiet():
            quantize_dynamic(str(prepped), str(out), op_types_to_quantize=list(op_types),
                             per_channel=per_channel, weight_type=QuantType.QUInt8,
                             nodes_to_exclude=list(exclude))
    except Exception as exc:
        raise UnsupportedModel(f"ONNX Runtime's dynamic quantizer failed: "
                               f"{_first_line(exc)}") from None


def quantized_summary(path: Path, layers: list[dict[str, str]]) -> dict[str, Any]:
    """Q/DQ node counts and which weighted layers got integer inputs in the written model."""
    proto = onnx.load(str(path), load_external_data=False)
    producers = {o: n for n in proto.graph.node for o in n.output}
    counts = op_counts(proto)
    by_name = {n.name: n for n in proto.graph.node}
    done = []
    for layer in layers:
        node = by_name.get(layer["layer"])
        if node is None or _integer_node(node, producers):
            done.append(layer["layer"])
    return {"quantize_linear": counts.get("QuantizeLinear", 0),
            "dequantize_linear": counts.get("DequantizeLinear", 0),
            "integer_ops": {op: c for op, c in counts.items() if op.endswith("Integer")
                            or op.startswith("QLinear") or op == "DynamicQuantizeLinear"},
            "quantized_layers": done}


def _integer_node(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> bool:
    """A weighted op whose weight comes through DequantizeLinear, or an integer op."""
    if node.op_type.endswith("Integer") or node.op_type.startswith("QLinear"):
        return True
    weight = producers.get(node.input[1]) if len(node.input) > 1 else None
    return weight is not None and weight.op_type == "DequantizeLinear"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences ORT quantization meanwhile: its logging.warning advice (root logger) and the
    progress lines its histogram calibrators print (stdout must stay pure JSON with --json)."""
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.root.setLevel(level)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def new_file(ctx: PassContext, source: str | Path, tag: str) -> Path:
    """A fresh `<source stem>.<tag>.onnx` in the workdir."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(str(source)).stem)
    return workfile(ctx, f"{stem[:50]}.{tag}", ".onnx")
