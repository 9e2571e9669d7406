"""`bf16`: the model in bfloat16 for the chosen runtime (how, and why that way: _lowp.py).

OpenVINO is asked for bf16 inference precision; torch gets a bfloat16 copy of the module
behind float32 I/O. ONNX Runtime's CPU provider has no bfloat16 convolution kernels, so
target onnxruntime (the default for an ONNX model) returns the model unchanged with that
reason. On a CPU without AVX512-BF16 or AMX the pass still applies and says so.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..types import ModelHandle
from ._checks import check_literals
from ._lowp import Target, apply_low_precision
from .base import PassContext, PassResult, register_pass


@dataclass(frozen=True)
class Bf16Config:
    """Where the bfloat16 model will run.

    Attributes:
        target: auto (torch model -> torch, ONNX -> onnxruntime), onnxruntime (does not
            apply), openvino, torch.
    """

    target: Target = "auto"

    def __post_init__(self) -> None:
        check_literals(self)


@register_pass("bf16", config=Bf16Config, accepts=("torch", "onnx", "openvino"),
               description="bfloat16: OpenVINO bf16 hint, or torch module in bfloat16 "
                           "(not ONNX Runtime: no CPU kernels)")
def apply(model: ModelHandle, config: Bf16Config, ctx: PassContext) -> PassResult:
    """The model in bfloat16 for `config.target`; the input is untouched."""
    return apply_low_precision(model, config.target, ctx, "bf16")
