"""Static profile of a model: parameters, MACs, bytes and arithmetic intensity per layer and
in total, at batch 1.

What the numbers mean (the same for torch and ONNX models):
  - `params`: learnable elements. `buffers`: elements of non-learnable state the layer reads
    (BatchNorm running mean/var; the integer `num_batches_tracked` counter is not model data
    at inference and is ignored).
  - `macs`: multiply-accumulates of convolution and linear layers only (Conv: output elements
    x in_ch/groups x kernel area; ConvTranspose: *input* elements x out_ch/groups x kernel
    area, since each input element is scattered over the kernel; Linear/Gemm/MatMul: output
    elements x the reduced dimension). Bias additions, activations and pooling count 0.
  - `weight_bytes`: bytes of the parameters and buffers the layer holds (a tensor shared by
    several layers is counted once, at its first use).
  - `activation_bytes`: bytes of the layer's output(s), summed over calls.
  - `mac_bytes` (memory access cost): bytes read + written = inputs + weights + outputs, per
    call; `intensity` = macs / mac_bytes.
  - `output_shape`: without the batch dimension (a leading 1 at batch 1 is dropped).
Totals are sums over `layers`. Anything not attributable to a layer (a bare parameter on a
container, a module never called) is gathered in a last row named "(other)", so the totals
still cover the whole model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..types import ModelHandle

TOTAL_KEYS = ("params", "buffers", "macs", "weight_bytes", "activation_bytes", "mac_bytes")
OTHER_ROW = "(other)"


@dataclass
class LayerStats:
    """One row of the per-layer table, filled in while the model runs or the graph is read."""

    name: str
    type: str
    output_shape: Any = None
    params: int = 0
    buffers: int = 0
    macs: int = 0
    weight_bytes: int = 0
    activation_bytes: int = 0
    mac_bytes: int = 0
    calls: int = 0

    def is_empty(self) -> bool:
        return not any(getattr(self, key) for key in TOTAL_KEYS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "output_shape": self.output_shape,
            **{key: int(getattr(self, key)) for key in TOTAL_KEYS},
            "intensity": intensity(self.macs, self.mac_bytes), "calls": self.calls,
        }


def intensity(macs: int, mac_bytes: int) -> float:
    """MACs per byte moved; 0.0 for a layer that moves nothing."""
    return round(macs / mac_bytes, 4) if mac_bytes else 0.0


def strip_batch(shape: Sequence[Any]) -> list[Any]:
    """A shape without its batch dimension: the leading 1 of a tensor computed at batch 1."""
    shape = list(shape)
    return shape[1:] if shape and shape[0] == 1 else shape


def assemble(name: str, input_chw: Sequence[int], output_shape: Any,
             layers: list[LayerStats]) -> dict[str, Any]:
    """The JSON-ready profile: totals (sums over layers) first, then the rows."""
    totals = {key: int(sum(getattr(row, key) for row in layers)) for key in TOTAL_KEYS}
    return {
        "model": name,
        "input_shape": [int(v) for v in input_chw],
        **totals,
        "intensity": intensity(totals["macs"], totals["mac_bytes"]),
        "output_shape": output_shape,
        "layers": [row.to_dict() for row in layers],
    }


def profile_model(handle: ModelHandle, input_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Profiles a model at batch 1 (see the module docstring for what each number means).

    Args:
        handle: a "torch" handle (eager or TorchScript module) or an "onnx" handle.
        input_size: (height, width) to profile at instead of the handle's input size.

    Returns:
        A plain dict with keys model, input_shape, params, buffers, macs, weight_bytes,
        activation_bytes, mac_bytes, intensity, output_shape, layers (and `note` where the
        per-layer table is partial, as for TorchScript).
    """
    channels, height, width = handle.input_spec.chw
    if input_size is not None:
        height, width = (int(v) for v in input_size)
    chw = (channels, height, width)
    if handle.format == "onnx":
        from .onnx_counts import profile_onnx

        return profile_onnx(handle.path, handle.input_spec.name, chw, name=handle.name)
    from .torch_counts import profile_torch

    return profile_torch(handle.obj, chw, dtype=handle.input_spec.dtype, name=handle.name)


__all__ = ["profile_model", "LayerStats", "assemble", "intensity", "strip_batch"]
