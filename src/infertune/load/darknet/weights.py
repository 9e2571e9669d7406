"""Reading and writing Darknet `.weights` files (FORMAT.md §1).

A file is a little-endian header (int32 major, minor, revision; then `seen` as uint64 when
major·10+minor ≥ 2 and both < 1000, else int32) followed by float32 arrays in cfg layer
order, with nothing else. The cfg is the only description of the content, so the reader
counts the floats it expects first and refuses a file of any other size (unless
`allow_partial`, for "first N layers" files such as `darknet19_448.conv.23`).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..._atomic import atomic_path
from ...errors import ModelFileError, WeightsError
from .layers import FileArray

_VERSION = struct.Struct("<iii")


@dataclass(frozen=True)
class WeightsHeader:
    """The header of a .weights file, plus what reading it did.

    Attributes:
        major, minor, revision: version triple (Darknet writes 0, 2, 0).
        seen: images seen during training.
        header_bytes: 20 (uint64 `seen`) or 16 (int32 `seen`, version < 0.2).
        transpose: connected-layer matrices stored [in][out] (major or minor > 1000).
        floats: float32 values after the header.
        layers_loaded: leading layers whose parameters were filled (all layers when the
            file is complete; fewer for a partial file).
    """

    major: int
    minor: int
    revision: int
    seen: int
    header_bytes: int
    transpose: bool
    floats: int = 0
    layers_loaded: int = 0


def parse_header(data: bytes, path: str) -> WeightsHeader:
    """Decodes the 16- or 20-byte header at the start of `data`."""
    if len(data) < _VERSION.size:
        raise WeightsError(f"expected a 16- or 20-byte header, found only {len(data)} bytes", path=path)
    major, minor, revision = _VERSION.unpack_from(data)
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000  # pjreddie's rule
    size = 20 if wide else 16
    if len(data) < size:
        raise WeightsError(f"expected a {size}-byte header (version {major}.{minor}.{revision}), "
                           f"found only {len(data)} bytes", path=path)
    seen = struct.unpack_from("<Q" if wide else "<i", data, 12)[0]
    return WeightsHeader(major, minor, revision, seen, size, major > 1000 or minor > 1000)


def _layer_arrays(net: torch.nn.Module, transpose: bool) -> list[list[FileArray]]:
    return [layer.file_arrays(transpose) for layer in net.layers]


def _floats(arrays: list[FileArray]) -> int:
    return sum(a.tensor.numel() for a in arrays)


def _open(path: Path):
    """Opens the file read-only (it is never modified), as ModelFileErrors naming it."""
    if path.is_dir():
        raise ModelFileError("is a directory, not a .weights file", path=path)
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ModelFileError("no such file", path=path) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read: {exc.strerror or exc}", path=path) from None


def _fill_layers(per_layer: list[list[FileArray]], values: np.ndarray) -> int:
    """Copies consecutive values into whole layers while they last; returns layers filled."""
    offset, loaded = 0, 0
    with torch.no_grad():
        for arrays in per_layer:
            if offset + _floats(arrays) > len(values):
                break
            for array in arrays:
                count = array.tensor.numel()
                _fill(array, values[offset:offset + count])
                offset += count
            loaded += 1
    return loaded


def _size_error(path: Path, header: WeightsHeader, expected: int, found: int, stray: int,
                name: str) -> WeightsError:
    hb = header.header_bytes
    tail = f" and {stray} stray bytes" if stray else ""
    return WeightsError(f"expected {expected} floats ({hb + 4 * expected} bytes with a {hb}-byte "
                        f"header) for {name}, found {found} floats{tail}", path=path)


def _fill(array: FileArray, values: np.ndarray) -> None:
    if array.stored_as is not None:
        values = values.reshape(array.stored_as).T
    source = torch.from_numpy(np.array(values, dtype=np.float32))  # a writable native copy
    array.tensor.copy_(source.reshape(array.tensor.shape))


def read_weights(net: torch.nn.Module, path: str | Path, *,
                 allow_partial: bool = False) -> WeightsHeader:
    """Fills `net` (a DarknetNet) from a .weights file, in place.

    Args:
        net: the network built from the cfg the file belongs to.
        path: the .weights file (never modified).
        allow_partial: accept a file holding only the first layers; whole layers it covers
            are loaded and `layers_loaded` says how many. A longer file is always an error.

    Returns:
        The header, with `floats` and `layers_loaded` filled in.

    Raises:
        ModelFileError: missing or unreadable file. WeightsError: truncated header, or a
            float count other than the cfg's (message: expected vs found).
    """
    path = Path(path)
    with _open(path) as file:
        size = os.fstat(file.fileno()).st_size
        header = parse_header(file.read(20), str(path))
        found, stray = divmod(size - header.header_bytes, 4)
        per_layer = _layer_arrays(net, header.transpose)
        expected = sum(_floats(arrays) for arrays in per_layer)
        if stray or found > expected or (found < expected and not allow_partial):
            raise _size_error(path, header, expected, found, stray, getattr(net, "name", "this cfg"))
        file.seek(header.header_bytes)
        values = np.fromfile(file, dtype="<f4", count=found)  # one copy, streamed
    if len(values) != found:
        raise WeightsError(f"file shrank while reading ({len(values)} of {found} floats)", path=path)
    loaded = _fill_layers(per_layer, values)
    return WeightsHeader(header.major, header.minor, header.revision, header.seen,
                         header.header_bytes, header.transpose, found, loaded)


def write_weights(net: torch.nn.Module, path: str | Path, *, seen: int = 0) -> int:
    """Writes `net`'s parameters as a .weights file (atomically; 20-byte 0.2.0 header).

    The layout is exactly what `read_weights` reads for the same cfg (so `dontload` layers
    are skipped and `numload`/`dontloadscales`/`flipped` are honoured). Returns bytes written.
    """
    if not 0 <= int(seen) < 2**64:
        raise ValueError(f"seen must fit in a uint64, not {seen}")
    chunks = [_VERSION.pack(0, 2, 0) + struct.pack("<Q", int(seen))]
    with torch.no_grad():
        for arrays in _layer_arrays(net, False):
            for array in arrays:
                values = array.tensor.detach().to("cpu", torch.float32).numpy()
                if array.stored_as is not None:
                    values = values.reshape(array.stored_as[::-1]).T
                chunks.append(np.ascontiguousarray(values, dtype="<f4").tobytes())
    payload = b"".join(chunks)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return len(payload)


__all__ = ["WeightsHeader", "parse_header", "read_weights", "write_weights"]
