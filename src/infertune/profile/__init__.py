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

from typing import Any

from ..types import ModelHandle
from .onnx_counts import profile_onnx
from .rows import OTHER_ROW, TOTAL_KEYS, LayerStats, assemble, intensity, strip_batch
from .torch_counts import profile_torch

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
        return profile_onnx(handle.path, handle.input_spec.name, chw, name=handle.name)
    return profile_torch(handle.obj, chw, dtype=handle.input_spec.dtype, name=handle.name)


__all__ = ["profile_model", "LayerStats", "assemble", "intensity", "strip_batch", "OTHER_ROW",
           "TOTAL_KEYS"]
