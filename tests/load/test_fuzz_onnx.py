"""Property tests for the ONNX loader, and its external-data path checks.

Random and mutated ONNX bytes either load or give a one-line InfertuneError. External-data
locations that are absolute, climb out of the model's folder or escape it through a symlink
are refused before any byte of them is read.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from fuzz_targets import check_outcome, load_onnx_bytes, onnx_strategy, tiny_onnx_bytes
from hypothesis import HealthCheck, given, settings

from infertune.errors import ModelFileError
from infertune.load import load_model

pytestmark = pytest.mark.fuzz

TINY = tiny_onnx_bytes()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(onnx_strategy(TINY))
def test_onnx_bytes_load_or_are_refused(tmp_path, data):
    outcome = check_outcome(lambda: load_onnx_bytes(data, tmp_path))
    if data == TINY:
        assert outcome == "ok"


def _external_model(folder, location: str):
    """The tiny model with its weight `w` stored as external data at `location`."""
    import onnx
    from onnx.external_data_helper import set_external_data

    model = onnx.load_from_string(TINY)
    weight = next(t for t in model.graph.initializer if t.name == "w")
    set_external_data(weight, location=location)
    weight.ClearField("raw_data")
    path = folder / "model" / "m.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def _weight_bytes() -> bytes:
    import onnx

    model = onnx.load_from_string(TINY)
    return next(t for t in model.graph.initializer if t.name == "w").raw_data


def test_external_data_inside_the_folder_loads(tmp_path):
    path = _external_model(tmp_path, "sub/w.bin")
    (path.parent / "sub").mkdir()
    (path.parent / "sub" / "w.bin").write_bytes(_weight_bytes())
    handle = load_model(str(path))
    assert handle.format == "onnx" and handle.input_spec.shape == (1, 3, 8, 8)


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin", "", ".",
                                      "SECRET_ABS"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(_weight_bytes())  # a valid payload: only the path check can refuse it
    location = str(secret) if location == "SECRET_ABS" else location
    path = _external_model(tmp_path, location)
    with pytest.raises(ModelFileError, match="refusing external data") as err:
        load_model(str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_external_data_symlink_escape_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(_weight_bytes())
    path = _external_model(tmp_path, "w.bin")
    os.symlink(secret, path.parent / "w.bin")  # inside by name, outside once resolved
    with pytest.raises(ModelFileError, match="refusing external data"):
        load_model(str(path))


def test_external_data_missing_or_short_is_one_line(tmp_path):
    path = _external_model(tmp_path, "w.bin")
    with pytest.raises(ModelFileError, match="missing"):
        load_model(str(path))
    (path.parent / "w.bin").write_bytes(_weight_bytes()[:10])  # 10 of 432 bytes
    with pytest.raises(ModelFileError) as err:
        load_model(str(path))
    assert "\n" not in str(err.value)


def test_loading_does_not_modify_the_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(TINY)
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    handle = load_model(str(path))
    assert handle.meta["outputs"] == ["y"]
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before
    assert np.frombuffer(_weight_bytes(), np.float32).shape == (4 * 3 * 3 * 3,)
