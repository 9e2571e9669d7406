"""Tiny models, data and measurements shared by the precision-pass tests (fp16, bf16, int8,
mixed precision, sensitivity). Imported by name: pytest puts this folder on sys.path.

Every model is built in code at 16x16 so that a pass runs in well under a second; the
calibration data are seeded normal images (what the passes calibrate on does not matter
for structure, and the numeric thresholds are stated where they are asserted).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from infertune.data.dataset import Dataset
from infertune.data.preprocess import resolve_preprocess
from infertune.load import load_model
from infertune.passes import PassContext, apply_passes
from infertune.types import InputSpec, ModelHandle

SPEC = InputSpec(shape=("batch", 3, 16, 16))
WEIGHTED = ("/0/Conv", "/3/Conv", "/7/Gemm")  # the node names of tiny()'s exported layers

# A Darknet classifier with the padded stride-1 max-pool (edge-padded by the importer).
DARKNET_CFG = """[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=1

[convolutional]
filters=10
size=1
stride=1
activation=linear

[avgpool]
"""


def tiny(softmax: bool = False) -> ModelHandle:
    """conv-BN-ReLU, pool, conv-ReLU, global pool, linear (10 classes) [, softmax]."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
              nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
              nn.Flatten(), nn.Linear(16, 10)]
    if softmax:
        layers.append(nn.Softmax(dim=1))
    net = nn.Sequential(*layers).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.1, 0.1)
        net[1].running_var.uniform_(0.5, 1.5)
    return ModelHandle(format="torch", obj=net, input_spec=SPEC, name="tiny", source="test")


def darknet(tmp_path: Path) -> ModelHandle:
    cfg = tmp_path / "tiny-darknet.cfg"
    cfg.write_text(DARKNET_CFG)
    return load_model(str(cfg))


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 16, 16)).astype(np.float32)


def dataset(n: int = 32, seed: int = 0) -> Dataset:
    return Dataset(images(n, seed), None, [], "seeded normal images", resolve_preprocess("none"))


def context(tmp_path: Path, n: int = 32) -> PassContext:
    return PassContext(workdir=tmp_path / "work", calibration=dataset(n))


def apply(model: ModelHandle, name: str, ctx: PassContext, **options) -> tuple[ModelHandle, dict]:
    out, reports = apply_passes(model, [(name, {k: str(v) for k, v in options.items()})], ctx)
    return out, reports[-1]


def as_onnx(model: ModelHandle, tmp_path: Path) -> ModelHandle:
    from infertune.passes.pipeline import to_onnx

    return to_onnx(model, PassContext(workdir=tmp_path / "export"))


def outputs(model: ModelHandle, x: np.ndarray) -> np.ndarray:
    """The model's first output on x, as float32 N x D, whatever its format."""
    if model.format == "torch":
        with torch.inference_mode():
            out = model.obj(torch.from_numpy(x))
        return out.float().numpy().reshape(len(x), -1)
    if model.format == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(model.path, "CPU",
                                           {"INFERENCE_PRECISION_HINT": "f32"})
        return np.asarray(compiled({0: x})[compiled.outputs[0]]).reshape(len(x), -1)
    import onnxruntime as ort

    session = ort.InferenceSession(model.path, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0]).reshape(len(x), -1)


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    noise = float(((reference.astype(np.float64) - test) ** 2).sum())
    signal = float((reference.astype(np.float64) ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


def agreement(reference: np.ndarray, test: np.ndarray) -> float:
    return float((reference.argmax(1) == test.argmax(1)).mean())


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def state_hash(module: nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().float().numpy().tobytes())
    return h.hexdigest()


def onnx_nodes(path: str | Path):
    import onnx

    return list(onnx.load(str(path)).graph.node)


def op_count(path: str | Path, op: str) -> int:
    return sum(n.op_type == op for n in onnx_nodes(path))


def weight_producer(path: str | Path, layer: str) -> str | None:
    """The op type producing the weight input of node `layer` (None: an initializer)."""
    nodes = onnx_nodes(path)
    producers = {o: n.op_type for n in nodes for o in n.output}
    node = next(n for n in nodes if n.name == layer)
    return producers.get(node.input[1])
