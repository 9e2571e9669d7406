"""prune_magnitude: achieved sparsity (within one weight per layer of the request), exactly
the smallest |w| zeroed (numpy golden), biases/BN untouched, honest size report, input
untouched, global scope, ONNX export of a pruned Darknet model."""
from __future__ import annotations

import zlib

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from infertune.errors import ConfigError
from infertune.export import export_onnx
from infertune.load import load_model
from infertune.passes import PASSES, PassContext
from infertune.passes.base import config_from_options
from infertune.types import InputSpec, ModelHandle


def _model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1),
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    return ModelHandle("torch", InputSpec(shape=("batch", 3, 8, 8)), "m", "test", obj=net)


def _prune(handle, tmp_path, **options):
    spec = PASSES.get("prune_magnitude")
    return spec.apply(handle, config_from_options(spec, options), PassContext(workdir=tmp_path))


@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.33])
def test_smallest_weights_zeroed(sparsity, tmp_path):
    handle = _model()
    before = {k: v.clone() for k, v in handle.obj.state_dict().items()}
    result = _prune(handle, tmp_path, sparsity=str(sparsity))
    assert result.applied
    after = result.model.obj.state_dict()
    for name in ("0.weight", "3.weight", "5.weight"):
        w0, w1 = before[name].numpy().ravel(), after[name].numpy().ravel()
        k = int(np.floor(w0.size * sparsity))
        golden = np.sort(np.argsort(np.abs(w0), kind="stable")[:k])
        np.testing.assert_array_equal(np.flatnonzero(w1 == 0), golden)  # random weights: no 0s
        np.testing.assert_array_equal(w1[w1 != 0], w0[w1 != 0])  # the rest unchanged
        assert abs((w1 == 0).mean() - sparsity) <= 1.0 / w0.size  # within one weight
    for name in ("0.bias", "1.weight", "1.bias", "3.bias", "5.bias"):
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0)
    for k, v in handle.obj.state_dict().items():  # input untouched
        assert torch.equal(v, before[k])


def test_sizes_reported_honestly(tmp_path):
    handle = _model()
    result = _prune(handle, tmp_path, sparsity="0.9")
    d = result.details
    assert "no speed-up expected" in d["note"] and "dense kernels" in d["note"]
    weights = [m.weight for m in result.model.obj if hasattr(m, "weight") and m.weight.dim() > 1]
    dense = sum(w.numel() * 4 for w in weights)
    nonzero = sum(int((w != 0).sum()) for w in weights)
    assert d["dense_bytes"] == dense
    # bitmask storage: ceil(n/8) mask bytes + 4 bytes per nonzero, computed here by hand
    assert d["bitmask_bytes"] == sum(-(-w.numel() // 8) for w in weights) + 4 * nonzero
    assert d["zlib_bytes"] == sum(len(zlib.compress(w.detach().numpy().tobytes(), 6)) for w in weights)
    assert d["bitmask_bytes"] < dense and d["zlib_bytes"] < dense
    assert abs(d["achieved_sparsity"] - 0.9) < 0.01
    assert [r["layer"] for r in d["layers"]] == ["0", "3", "5"]


def test_global_scope_one_threshold(tmp_path):
    handle = _model()
    with torch.no_grad():
        handle.obj[5].weight.mul_(1e-3)  # the Linear's weights are the smallest everywhere
    before = handle.obj[5].weight.clone()
    result = _prune(handle, tmp_path, sparsity="0.5", scope="global")
    ws = [m.weight.detach().numpy().ravel() for m in (handle.obj[0], handle.obj[3], handle.obj[5])]
    allw = np.abs(np.concatenate(ws))
    threshold = np.sort(allw)[int(np.floor(allw.size * 0.5)) - 1]
    rows = {r["layer"]: r for r in result.details["layers"]}
    for name, w in zip(("0", "3", "5"), ws):
        assert rows[name]["zeros"] == int((np.abs(w) <= threshold).sum())
    assert rows["5"]["sparsity"] == 1.0 or rows["5"]["sparsity"] > 0.5
    assert torch.equal(handle.obj[5].weight, before)


def test_no_op_and_bad_options(tmp_path):
    handle = _model()
    result = _prune(handle, tmp_path, sparsity="0")
    assert not result.applied and result.model is handle
    spec = PASSES.get("prune_magnitude")
    for bad in ({"sparsity": "1"}, {"sparsity": "-0.5"}, {"scope": "all"}, {"ratio": "0.5"}):
        with pytest.raises(ConfigError):
            config_from_options(spec, bad)


def test_darknet_onnx(tmp_path):
    from tiny_models import TINY_CFG

    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    handle = load_model(str(cfg))
    result = _prune(handle, tmp_path, sparsity="0.5")
    out = tmp_path / "sparse.onnx"
    export_onnx(result.model, out)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        ref = result.model.obj(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-6)  # fp32 kernel order differences
