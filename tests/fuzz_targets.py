"""What is fuzzed and what counts as a crash, shared by the property tests (the
`test_fuzz_*.py` files, marker `fuzz`) and the longer campaign in `fuzz/campaign.py`.

Each target takes one generated input (text or bytes), feeds it to one parser or loader the
way a user's file would reach it, and returns normally if the input loaded or was refused
with a one-line `InfertuneError`. Anything else (another exception type, a multi-line
message) is a crash and propagates: `check_outcome` is the one place that decides.

Strategies generate inputs from real files (the zoo's Darknet cfgs, a tiny ONNX model, real
PNG/JPEG/npz bytes) mutated at random, plus grammar-aware and arbitrary inputs.
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from hypothesis import strategies as st

from infertune.errors import InfertuneError

# ----------------------------------------------------------------------------- outcome


class MultiLineError(AssertionError):
    """An InfertuneError whose message is not one line (the CLI promises one line)."""


def check_outcome(run: Callable[[], object]) -> str:
    """Runs `run`; returns "ok" or "refused"; any other exception propagates (a crash)."""
    try:
        run()
    except InfertuneError as exc:
        if "\n" in str(exc) or not str(exc).strip():
            raise MultiLineError(f"{type(exc).__name__} message is not one line: {str(exc)!r}")
        return "refused"
    return "ok"


# ----------------------------------------------------------------------------- darknet cfg

SMALL_CFG = """[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[route]
layers=-1
[convolutional]
filters=5
size=1
activation=linear
[avgpool]
[softmax]
"""

# Values a hostile or broken cfg may hold: huge, negative, zero, NaN, unicode, C-isms.
NASTY_VALUES = ["0", "-1", "1", "2", "3", "-3", "1000000000", "2147483648", "-2147483649",
                "9" * 40, "9" * 5000, "1e9", "1e999", "nan", "inf", "-inf", "0x1p99999", "1.5",
                "3#x", "a", "ä", "𝟘", "1,2", "-1,-2", "-1,0", "0,0,0", "-100", ",", "0x10", " "]
KEYS = ["filters", "size", "stride", "stride_x", "stride_y", "pad", "padding", "groups",
        "dilation", "width", "height", "channels", "batch", "inputs", "layers", "from", "output",
        "activation", "numload", "dontload", "antialiasing", "extra", "reverse", "flatten",
        "temperature", "classes", "num", "mask", "side", "coords", "crop_height", "crop_width",
        "scale_wh", "group_id", "batch_normalize", "alpha", "beta", "kappa", "scale", "unknown"]
SECTIONS = ["net", "convolutional", "conv", "maxpool", "route", "shortcut", "reorg", "upsample",
            "connected", "softmax", "avgpool", "local", "deconvolutional", "batchnorm", "crop",
            "yolo", "region", "detection", "scale_channels", "sam", "dropout", "cost",
            "normalization", "activation", "logistic", "l2norm", "lstm", "bogus"]
ACTIVATIONS = ["leaky", "linear", "relu", "logistic", "mish", "swish", "tanh", "nope", ""]

# Above this many parameters a fuzzed cfg is only planned, not built: building allocates
# (fine, that is what a user asked for) but would make each example slow.
BUILD_PARAM_LIMIT = 2_000_000


def zoo_cfgs() -> list[str]:
    """Cfg text of every Darknet zoo architecture at 32×32 with 10 classes, plus SMALL_CFG."""
    from infertune.zoo.darknet_family import ARCHS

    return [SMALL_CFG] + [arch.cfg_text(32, 32, 10) for arch in ARCHS]


@st.composite
def mutated_cfg(draw, bases: list[str]) -> str:
    """A real cfg with 1-6 line edits: deletions, duplications, swaps, nasty values."""
    lines = draw(st.sampled_from(bases)).splitlines()
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        op = draw(st.integers(0, 5))
        if op == 0 and lines:
            del lines[i]
        elif op == 1:
            lines.insert(i, f"{draw(st.sampled_from(KEYS))}={draw(st.sampled_from(NASTY_VALUES))}")
        elif op == 2:
            lines.insert(i, f"[{draw(st.sampled_from(SECTIONS))}]")
        elif op == 3 and lines and "=" in lines[i]:
            lines[i] = f"{lines[i].split('=')[0]}={draw(st.sampled_from(NASTY_VALUES))}"
        elif op == 4 and lines:
            lines.insert(i, lines[draw(st.integers(0, len(lines) - 1))])
        elif op == 5 and lines:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


@st.composite
def grammar_cfg(draw) -> str:
    """A cfg built from the grammar: optional [net], random sections, keys and values."""
    parts = []
    if draw(st.booleans()):
        parts.append("[net]")
        for key in ("width", "height", "channels"):
            if draw(st.integers(0, 5)):
                parts.append(f"{key}={draw(st.sampled_from(['8', '16', '1', '3'] + NASTY_VALUES))}")
    for _ in range(draw(st.integers(0, 6))):
        parts.append(f"[{draw(st.sampled_from(SECTIONS))}]")
        for _ in range(draw(st.integers(0, 5))):
            key = draw(st.sampled_from(KEYS))
            value = (draw(st.sampled_from(ACTIVATIONS)) if key == "activation" else
                     draw(st.one_of(st.sampled_from(NASTY_VALUES), st.integers(-5, 70).map(str))))
            parts.append(f"{key}={value}")
    return "\n".join(parts)


def cfg_text_strategy() -> st.SearchStrategy[str]:
    return st.one_of(mutated_cfg(zoo_cfgs()), grammar_cfg(), st.text(max_size=300))


def run_cfg(text: str) -> None:
    """Parse and plan a cfg; build it (random init) and run one image when it is small."""
    import torch

    from infertune.load.darknet import parse_cfg
    from infertune.load.darknet.build import DarknetNet, plan_network
    from infertune.load.darknet.budget import layer_params

    sections = parse_cfg(text, "fuzz.cfg")
    first, plans = plan_network(sections)
    if sum(layer_params(p) for p in plans) > BUILD_PARAM_LIMIT:
        return
    net = DarknetNet(sections, plans, first, name="fuzz.cfg").eval()
    if first[0] * first[1] * first[2] <= 64 * 64 * 4:
        with torch.no_grad():
            net(torch.zeros(1, *first))


def load_cfg_file(text: str | bytes, folder: Path) -> None:
    """The user's path: `load_darknet(path)` on a cfg file holding these bytes."""
    from infertune.load.darknet import load_darknet

    cfg = folder / "fuzz.cfg"
    cfg.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    load_darknet(cfg)


# ----------------------------------------------------------------------------- weights

WEIGHTS_CFG = SMALL_CFG


def real_weights(seed: int = 0) -> bytes:
    """A complete .weights file for WEIGHTS_CFG (written by our writer, 20-byte header)."""
    import torch

    from infertune.load.darknet import network_from_text, write_weights

    torch.manual_seed(seed)
    net = network_from_text(WEIGHTS_CFG)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.weights"
        write_weights(net, path)
        return path.read_bytes()


@st.composite
def mutated_bytes(draw, base: bytes, max_extra: int = 64) -> bytes:
    """`base` truncated, extended, with bytes flipped, or a slice repeated."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 4))
        if op == 0:
            data = data[:draw(st.integers(0, len(data)))]
        elif op == 1:
            data += draw(st.binary(max_size=max_extra))
        elif op == 2 and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == 3 and data:
            i = draw(st.integers(0, len(data) - 1))
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[i:i + len(chunk)] = chunk
        elif op == 4 and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i:i] = data[i:i + draw(st.integers(1, 32))]
    return bytes(data)


def weights_strategy(base: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated_bytes(base), st.binary(max_size=64))


def load_weights_bytes(data: bytes, folder: Path, allow_partial: bool = False) -> None:
    from infertune.load.darknet import load_darknet

    cfg, weights = folder / "w.cfg", folder / "w.weights"
    cfg.write_text(WEIGHTS_CFG)
    weights.write_bytes(data)
    load_darknet(cfg, weights, allow_partial=allow_partial)


# ----------------------------------------------------------------------------- onnx

def tiny_onnx_bytes() -> bytes:
    """A real ONNX model (Conv → Relu → GlobalAveragePool → Flatten, 1×3×8×8 input), built
    with onnx.helper so it does not depend on the torch exporter."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 8, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 4])], [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def onnx_strategy(base: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated_bytes(base), st.binary(max_size=256))


def load_onnx_bytes(data: bytes, folder: Path) -> None:
    from infertune.load import load_model

    path = folder / "fuzz.onnx"
    path.write_bytes(data)
    load_model(str(path))


# ----------------------------------------------------------------------------- images

def real_images() -> dict[str, bytes]:
    """A 12×10 RGB gradient as PNG, JPEG and BMP bytes."""
    from PIL import Image

    pixels = np.arange(12 * 10 * 3, dtype=np.uint8).reshape(10, 12, 3)
    out = {}
    for suffix, fmt in ((".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP")):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format=fmt)
        out[suffix] = buf.getvalue()
    return out


def image_strategy(bases: dict[str, bytes]) -> st.SearchStrategy[tuple[str, bytes]]:
    """(suffix, bytes): a real image mutated, or random bytes under an image suffix."""
    mutated = st.sampled_from(sorted(bases)).flatmap(
        lambda suffix: mutated_bytes(bases[suffix]).map(lambda data: (suffix, data)))
    return st.one_of(mutated, st.tuples(st.sampled_from(sorted(bases)), st.binary(max_size=128)))


def load_image_bytes(suffix: str, data: bytes, folder: Path) -> None:
    """An image folder of one class holding this file, loaded at 3×8×8."""
    from infertune.data import load_dataset

    cls = folder / "images" / "a"
    cls.mkdir(parents=True, exist_ok=True)
    for old in cls.iterdir():
        old.unlink()
    (cls / f"x{suffix}").write_bytes(data)
    load_dataset(str(folder / "images"), input_shape=(3, 8, 8), preprocess="darknet")


# ----------------------------------------------------------------------------- npz

DTYPES = ["uint8", "int8", "int16", "int64", "uint64", "float16", "float32", "float64",
          "complex64", "bool", "<U3", "S2", "datetime64[s]", "V4"]


@st.composite
def npz_arrays(draw) -> dict[str, np.ndarray]:
    """x (and maybe y, names) with random dtypes, ranks and shapes; values may be NaN/huge."""
    arrays = {}
    for key in draw(st.lists(st.sampled_from(["x", "y", "class_names", "names", "z"]),
                             min_size=1, max_size=4, unique=True)):
        shape = tuple(draw(st.lists(st.integers(0, 6), max_size=5)))
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        raw = draw(st.binary(min_size=int(np.prod(shape)) * dtype.itemsize,
                             max_size=int(np.prod(shape)) * dtype.itemsize))
        arrays[key] = np.frombuffer(raw, dtype=dtype).reshape(shape) if dtype.itemsize else \
            np.zeros(shape, dtype)
    return arrays


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def npz_strategy(base: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(npz_arrays().map(npz_bytes), mutated_bytes(base), st.binary(max_size=128))


def real_npz() -> bytes:
    rng = np.random.default_rng(0)
    return npz_bytes({"x": rng.integers(0, 255, (4, 3, 8, 8), dtype=np.uint8),
                      "y": np.array([0, 1, 2, 1])})


def load_npz_bytes(data: bytes, folder: Path) -> None:
    from infertune.data import load_dataset

    path = folder / "fuzz.npz"
    path.write_bytes(data)
    load_dataset(str(path), input_shape=(3, 8, 8), preprocess="darknet")


__all__ = [name for name in dir() if not name.startswith("_") and name not in ("io", "tempfile", "np", "st")]
