"""`fp16`: the model in float16 for the chosen runtime (how, and why that way: _lowp.py).

ONNX Runtime gets a float16 graph with float32 inputs and outputs; OpenVINO is asked for
f16 inference precision; torch gets a float16 copy of the module behind float32 I/O. On a
CPU without native FP16 arithmetic the pass still applies, and says so in its report.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..types import ModelHandle
from ._checks import check_literals
from ._lowp import Target, apply_low_precision
from .base import PassContext, PassResult, register_pass


@dataclass(frozen=True)
class Fp16Config:
    """Where the float16 model will run.

    Attributes:
        target: auto (torch model -> torch, ONNX -> onnxruntime), onnxruntime, openvino, torch.
        keep_float_ops: ONNX op types kept float32 besides onnxconverter-common's default
            block list (target onnxruntime), e.g. `keep_float_ops=Softmax+Resize`.
    """

    target: Target = "auto"
    keep_float_ops: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_literals(self)
        if isinstance(self.keep_float_ops, str):
            object.__setattr__(self, "keep_float_ops", (self.keep_float_ops,))


@register_pass("fp16", config=Fp16Config, accepts=("torch", "onnx", "openvino"),
               description="float16: ONNX graph with float32 I/O, OpenVINO f16 hint, or torch "
                           "module in float16")
def apply(model: ModelHandle, config: Fp16Config, ctx: PassContext) -> PassResult:
    """The model in float16 for `config.target`; the input is untouched."""
    return apply_low_precision(model, config.target, ctx, "fp16", tuple(config.keep_float_ops))
