"""The one in-process runner (measure/inprocess.py) behind apply, bench, eval and predict:
the same model run in torch and in ONNX Runtime gives the same outputs through it, a
fixed-batch runner pads the last batch, and nested outputs are flattened in order."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from infertune.errors import UnsupportedModel, first_line
from infertune.export import export_onnx
from infertune.load import load_model
from infertune.measure.inprocess import (Runner, first_output, inprocess_runner, output_arrays,
                                         reference_outputs, run_batches)
from infertune.tensors import tensors_in
from tiny_models import TINY_CFG


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inprocess")
    cfg = folder / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    handle = load_model(str(cfg))
    onnx_path = folder / "tiny.onnx"
    export_onnx(handle, str(onnx_path))
    return handle, load_model(str(onnx_path))


def test_torch_and_onnx_references_agree(tiny):
    """The float model through torch and its ONNX export through ONNX Runtime: same outputs
    (float32 rounding of a 2-layer net: 1e-5 absolute on softmax probabilities)."""
    torch_handle, onnx_handle = tiny
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)
    (from_torch,), (from_ort,) = (reference_outputs(h, [x]) for h in (torch_handle, onnx_handle))
    expected = torch_handle.obj(torch.from_numpy(x)).detach().numpy()
    assert len(from_torch) == len(from_ort) == 1
    np.testing.assert_allclose(from_torch[0], expected, atol=1e-6)
    np.testing.assert_allclose(from_ort[0], expected.reshape(from_ort[0].shape), atol=1e-5)


def test_torch_runner_restores_the_thread_count(tiny):
    before = torch.get_num_threads()
    runner = inprocess_runner(tiny[0], threads=1)
    assert torch.get_num_threads() == 1
    runner.close()
    assert torch.get_num_threads() == before


def test_fixed_batch_runner_gets_the_last_batch_padded():
    seen = []

    def run(x):
        seen.append(len(x))
        return x.reshape(len(x), -1)[:, :2] * 2.0

    x = np.arange(5 * 2, dtype=np.float32).reshape(5, 2, 1, 1)
    out = run_batches(Runner("fake", run, batch=2), x, 2)
    assert seen == [2, 2, 2]  # 5 samples at a fixed batch of 2: the last batch padded to 2
    np.testing.assert_array_equal(out, x.reshape(5, 2) * 2.0)


def test_outputs_are_flattened_in_order():
    a, b, c = torch.ones(1, 2), torch.zeros(1, 3), torch.full((1, 1), 7.0)
    nested = {"heads": (a, [b]), "extra": c}
    assert [t.shape[1] for t in tensors_in(nested)] == [2, 3, 1]
    arrays = output_arrays(nested)
    assert [arr.tolist() for arr in arrays] == [[[1.0, 1.0]], [[0.0, 0.0, 0.0]], [[7.0]]]
    assert [arr.shape for arr in output_arrays([np.ones((1, 4))])] == [(1, 4)]


def test_first_output_refuses_non_classifier_outputs():
    assert first_output(np.ones((2, 5, 1, 1)), 2).shape == (2, 5)
    with pytest.raises(UnsupportedModel, match=r"N×K scores.*\(2, 5, 3, 3\)"):
        first_output(np.ones((2, 5, 3, 3)), 2)


def test_first_line():
    exc = ValueError("bad thing\nwith a second line")
    assert first_line(exc) == "bad thing"
    assert first_line(exc, with_type=True) == "ValueError: bad thing"
    assert first_line(RuntimeError("")) == "RuntimeError"
    assert first_line(OSError("x" * 400)) == "x" * 300
