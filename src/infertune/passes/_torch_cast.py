"""A torch module run in float16/bfloat16 behind float32 inputs and outputs (fp16/bf16 passes,
target torch). Imported only when such a pass runs (it imports torch at the top).

Why a converted copy and not autocast: the converted module *is* the candidate, so every
torch runtime runs it as it is (torch.export keeps the dtypes; torch.compile generates
bf16 kernels) without a flag each runtime would have to honour; autocast would also cast
back and forth around every op it does not list. The wrapper keeps the handle's contract
(float32 NCHW in, float32 out), so data, parity checks and metrics need no change.
"""
from __future__ import annotations

import copy
import types
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class CastIO(nn.Module):
    """Runs `inner` in `dtype`: casts the input to it and every output back to float32."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> Any:
        return to_float32(self.inner(x.to(self.dtype)))

    def float32_module(self) -> nn.Module:
        """A float32 copy of `inner` with the same (already rounded) weights, for a runtime
        that does low precision itself: OpenVINO compiles this FP32 graph with its own
        bf16/f16 inference precision (runtimes/openvino.py). Upcasting is exact (every
        bfloat16/float16 value is a float32), and OpenVINO rounds the weights to the same
        values again, so nothing of the candidate changes but who does the casting."""
        return copy.deepcopy(self.inner).float().eval()


def to_float32(out: Any) -> Any:
    """Floating tensors (also inside tuples, lists and dicts) back to float32."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return type(out)(to_float32(o) for o in out)
    if isinstance(out, dict):
        return {k: to_float32(v) for k, v in out.items()}
    return out


def converted(module: nn.Module, precision: str) -> CastIO:
    """A float16/bfloat16 copy of `module` (the original untouched) in a CastIO."""
    dtype = DTYPES[precision]
    net = copy.deepcopy(module).to(dtype).eval()
    for sub in net.modules():
        if getattr(sub, "darknet_type", None) == "maxpool" and any(getattr(sub, "pads", ())):
            sub.forward = types.MethodType(_darknet_maxpool_low, sub)
    return CastIO(net, dtype).eval()


def _darknet_maxpool_low(self, x: torch.Tensor) -> torch.Tensor:
    """Darknet's padded max-pool (load/darknet/layers.py) padding with -inf: its -FLT_MAX
    overflows float16 and bfloat16. The maximum is the same wherever a window holds a real
    pixel, which Darknet's padding (at most size - 1) always leaves."""
    x = F.pad(x, self.pads, value=float("-inf"))
    return F.max_pool2d(x, self.size, self.stride)


def is_script(module: Any) -> bool:
    return isinstance(module, torch.jit.ScriptModule)
