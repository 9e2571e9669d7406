"""Every zoo entry, driven by the registry: build, forward, class override, tracing, ONNX.

Plus the published parameter counts and multiply-accumulate counts of the hand-written CNNs
(public facts: the reference implementations' figures, counted here independently).
"""
from __future__ import annotations

import functools

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from infertune.zoo import ZOO

SMALL = (64, 64)  # forward checks: any size works (global pooling), small keeps tests fast
CLASSIFIERS = [n for n in ZOO.names() if ZOO.get(n).task == "classification"]
DETECTORS = [n for n in ZOO.names() if ZOO.get(n).task == "detection"]
# torch.jit.trace and the TorchScript-based ONNX exporter are deprecated but still the
# interfaces this tool promises to support; their warnings are expected here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# Published parameter counts (1000 classes) and multiply-accumulates at 224x224.
PUBLISHED = {
    "resnet18": (11_689_512, 1.814e9),
    "resnet50": (25_557_032, 4.09e9),
    "mobilenet_v1": (4_231_976, 569e6),
    "mobilenet_v2": (3_504_872, 300e6),
    "shufflenet_v2": (2_278_604, 146e6),
}


def build(name: str, num_classes: int | None = None, size: tuple[int, int] = SMALL) -> nn.Module:
    entry = ZOO.get(name)
    torch.manual_seed(0)  # the caller seeds; build() itself must not
    return entry.build(num_classes or entry.num_classes, size)


@functools.lru_cache(maxsize=None)
def shared_model(name: str, num_classes: int | None = None) -> nn.Module:
    """One build per (entry, classes) for the read-only tests: random init of the 20M-parameter
    Darknet nets dominates the folder's run time otherwise."""
    return build(name, num_classes)


@pytest.fixture(scope="module", autouse=True)
def _free_shared_models():
    yield
    shared_model.cache_clear()  # ~0.5 GB of weights; don't hold it for the rest of the run


def count_macs(model: nn.Module, size: tuple[int, int]) -> int:
    """Conv2d/Linear multiply-accumulates of one image, counted with forward hooks."""
    total = 0

    def hook(mod: nn.Module, inputs, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total += out[0].numel() * (mod.in_channels // mod.groups) * kh * kw
        else:
            total += mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, *size))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", ZOO.names())
def test_entry_metadata(name):
    entry = ZOO.get(name)
    # The trained reference models classify the sample set's 10 digits; the rest ImageNet's.
    assert entry.name == name and entry.num_classes == (10 if entry.family == "reference" else 1000)
    assert entry.preprocess in ("darknet", "imagenet", "efficientnet_lite")
    assert entry.description and "\n" not in entry.description
    assert len(entry.input_size) == 2


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_small_input(name):
    model = shared_model(name)
    assert not any(m.training for m in model.modules()), "build() must return eval mode"
    with torch.no_grad():
        out = model(torch.randn(2, 3, *SMALL))
    assert out.shape == (2, ZOO.get(name).num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ZOO.names())
def test_weights_follow_the_callers_seed(name):
    first = build(name, num_classes=10).state_dict()
    second = build(name, num_classes=10).state_dict()  # build() reseeds with the same seed
    third = ZOO.get(name).build(10, SMALL).state_dict()  # RNG advanced, not reseeded
    weights = [k for k, v in first.items() if v.is_floating_point() and v.dim() == 4]
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in weights)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_num_classes_override(name):
    model = build(name, num_classes=10, size=(72, 56))  # non-square, not a power of two
    with torch.no_grad():
        out = model(torch.randn(2, 3, 72, 56))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_jit_trace(name):
    model = shared_model(name, num_classes=10)
    x = torch.randn(2, 3, *SMALL)
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
        torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_onnx_export_dynamic_batch(name, tmp_path):
    """Exported at 64x64 with a symbolic batch; onnxruntime must agree at batch 1 and 3.

    Tolerance: float32 kernels in onnxruntime and torch sum in different orders, so results
    differ by a few ulps per layer, compounding over ~20-50 layers to ~1e-6..1e-5 of the
    output's magnitude. 1e-4 of the output scale leaves margin for that, while any real
    mismatch (padding, activation, shuffle order, baked-in batch) is O(1) of the scale.
    """
    model = shared_model(name, num_classes=10)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, torch.randn(2, 3, *SMALL), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # tiny inputs; spinning worker threads only add contention
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.randn(batch, 3, *SMALL)
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(None, {"input": x.numpy()})
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_params_and_macs(name):
    params, macs = PUBLISHED[name]
    model = shared_model(name)
    assert sum(p.numel() for p in model.parameters()) == params
    assert count_macs(model, (224, 224)) == pytest.approx(macs, rel=0.01)


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_returns_one_raw_map_per_head(name):
    """A zoo detector (a Darknet YOLO) returns every [yolo] head's raw map: 3 anchors ×
    (5 + classes) channels on a grid of input / stride, for any input size and class count."""
    for classes, size in ((ZOO.get(name).num_classes, SMALL), (3, (96, 64))):
        model = build(name, num_classes=classes, size=size)
        with torch.no_grad():
            maps = model(torch.randn(2, 3, *size))
        strides = [size[0] // m.shape[2] for m in maps]
        assert len(maps) >= 2 and sorted(strides, reverse=True) == strides
        for m, stride in zip(maps, strides):
            assert m.shape == (2, 3 * (5 + classes), size[0] // stride, size[1] // stride)
            assert torch.isfinite(m).all()
