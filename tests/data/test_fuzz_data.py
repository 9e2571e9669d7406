"""Property tests for the image-folder and .npz readers.

Mutated PNG/JPEG/BMP bytes, random bytes, npz files with any dtype/rank/shape (object arrays,
strings, complex, NaN) and corrupted npz archives either load or give a one-line
InfertuneError. Regression tests for the crashes found follow the properties.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from fuzz_targets import (check_outcome, image_strategy, load_image_bytes, load_npz_bytes,
                          npz_strategy, real_images, real_npz)
from hypothesis import HealthCheck, given, settings

from infertune.data import load_dataset
from infertune.errors import DataError

pytestmark = pytest.mark.fuzz

FAST = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
IMAGES = real_images()
NPZ = real_npz()


@FAST
@given(image_strategy(IMAGES))
def test_image_files_load_or_are_refused(tmp_path, item):
    suffix, data = item
    outcome = check_outcome(lambda: load_image_bytes(suffix, data, tmp_path))
    if data == IMAGES[suffix]:
        assert outcome == "ok"


@FAST
@given(npz_strategy(NPZ))
def test_npz_files_load_or_are_refused(tmp_path, data):
    outcome = check_outcome(lambda: load_npz_bytes(data, tmp_path))
    if data == NPZ:
        assert outcome == "ok"


# ----------------------------------------------------------------------------- regressions

def _png_declaring(width: int, height: int) -> bytes:
    """A real 1×1 grey PNG whose IHDR claims width×height (CRC fixed up): a decompression
    bomb's header, without the gigabytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    return bytes(data)


@pytest.mark.parametrize("width, height", [(12000, 12000), (100000, 100000)])
def test_image_with_huge_declared_size_is_refused_before_decoding(tmp_path, width, height):
    # 12000² = 144 M pixels is below Pillow's own error threshold (2 × 89 M): Pillow only
    # warns and would decode 144 MB per channel. 100000² is a DecompressionBombError.
    with pytest.raises(DataError, match="pixels") as err:
        load_image_bytes(".png", _png_declaring(width, height), tmp_path)
    assert "\n" not in str(err.value) and "x.png" in str(err.value)


def _npz_with_header_shape(shape: tuple[int, ...]) -> bytes:
    """An .npz whose x.npy header declares `shape` but holds 16 bytes of data."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.uint8))
    header["shape"] = shape
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, header)
    npy.write(b"\0" * 16)
    out = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("x.npy", npy.getvalue())
    return out.getvalue()


@pytest.mark.parametrize("shape", [(10**6, 3, 100, 100), (2**62,), (10**5, 10**5)])
def test_npz_with_huge_declared_shape_is_refused_without_allocating(tmp_path, shape):
    with pytest.raises(DataError, match="declares") as err:
        load_npz_bytes(_npz_with_header_shape(shape), tmp_path)
    assert "\n" not in str(err.value)


def test_npz_object_arrays_are_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="pickled"):
        load_dataset(str(path), input_shape=(3, 8, 8))


def test_npz_member_that_is_not_an_array_is_refused(tmp_path):
    # np.load returns a non-.npy member as raw bytes, which then reached `x.dtype`
    import zipfile

    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x", b"\x00" * 64)
    with pytest.raises(DataError, match="not an .npy array"):
        load_dataset(str(path), input_shape=(3, 8, 8))


@pytest.mark.parametrize("shape, dtype", [((3, 0, 4), np.uint64), ((6, 6, 0), np.float32),
                                          ((2, 3, 0, 8), np.uint8)])
def test_npz_with_an_empty_axis_is_refused(tmp_path, shape, dtype):
    # found by fuzz/campaign.py: x.min() on an empty integer array (ValueError) and the
    # NHWC transpose/take of an empty axis (IndexError) escaped as crashes
    path = tmp_path / "empty.npz"
    np.savez(path, x=np.zeros(shape, dtype))
    with pytest.raises(DataError, match="no empty axis"):
        load_dataset(str(path), input_shape=(3, 8, 8))
