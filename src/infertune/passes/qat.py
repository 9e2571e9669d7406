"""`qat`: quantization-aware fine-tuning to INT8, for when post-training INT8 misses the budget.

Why torchao's PT2E QAT: it is the QAT variant of the flow `int8_static engine=torch` already
uses (`_torch_quant.py`), and it works with torch 2.13 + torchao here: the model (BatchNorm
folded first by our fold_bn, as there) is captured with torch.export, `prepare_qat_pt2e`
inserts fake-quant modules as the X86InductorQuantizer with `is_qat=True` configures them
(per-channel symmetric int8 weights, per-tensor uint8 activations, straight-through
gradients), the recovery loop trains that graph against the float teacher by distillation,
and `convert_pt2e` turns it into the same kind of quantize/dequantize program PTQ gives. The
result is a torch handle for the `compile` runtime (inductor lowers the q/dq pairs to oneDNN
int8 kernels); eager mode runs it op by op in float. An ORT fake-quant fallback was not
needed, so there is none.

Teacher: ctx.reference when it is an eager torch model (the original float model), else the
input model itself (its own float weights). The input model is untouched.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..types import ModelHandle
from . import _objectives as objectives
from . import recovery
from .base import PassContext, PassResult, register_pass


@dataclass(frozen=True)
class QatConfig(recovery.Budget):
    """QAT settings; the budget and optimizer options are recovery.Budget's.

    Attributes:
        lr: lower than the other recovery passes' default: QAT starts from a model that is
            already good and only adapts it to the rounding.
        temperature: distillation temperature against the float teacher.
        alpha: weight of the label cross-entropy when the data has labels, in [0, 1].
        autocast: "fp32" by default, not "auto": the fake-quant observers set INT8 scales
            from the activations they see, and those must be the float ones the converted
            program will quantize, not BF16-rounded ones.
        layout: "nchw" by default, not "auto": channels_last was measured on the float
            recovery passes only, not on prepared fake-quant programs.
    """

    lr: float = 1e-4
    temperature: float = 4.0
    alpha: float = 0.5
    autocast: str = "fp32"
    layout: str = "nchw"

    def __post_init__(self) -> None:
        self.check()
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, not {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], not {self.alpha}")


@register_pass("qat", config=QatConfig, accepts=("torch",), needs_data=True, trains=True,
               description="quantization-aware fine-tuning to INT8 (torchao PT2E QAT, "
                           "distilled from the float model; for the compile runtime)")
def apply(model: ModelHandle, config: QatConfig, ctx: PassContext) -> PassResult:
    """Fake-quant training of a copy of `model`, then conversion to an INT8 program."""
    from ._torch_quant import NO_TORCHAO, _quiet

    why = recovery.refusal(model, ctx, labels=False, teacher=False)
    if why:
        return PassResult(model, False, why)
    try:
        with _quiet():
            from torchao.quantization.pt2e import quantize_pt2e  # noqa: F401
    except ImportError:
        return PassResult(model, False, NO_TORCHAO)
    try:
        with _quiet():
            prepared, folded = prepare(model)
    except Exception as exc:  # a model torch.export or PT2E cannot take: a result
        return PassResult(model, False, f"PT2E QAT could not prepare the model: "
                                        f"{type(exc).__name__}: {_first_line(exc)}")
    return train_and_convert(model, prepared, folded, config, ctx)


def prepare(model: ModelHandle) -> tuple[Any, int]:
    """The captured model with fake-quant modules (BatchNorm folded first), and the fold count."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from ._torch_quant import _folded_copy, capture

    module, folded = _folded_copy(model.obj)
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(is_qat=True))
    return prepare_qat_pt2e(capture(module, model.input_spec), quantizer), folded


def set_mode(module: Any, training: bool) -> None:
    """A captured program has no .train()/.eval(); torchao swaps its dropout/BN ops instead."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    (move_exported_model_to_train if training else move_exported_model_to_eval)(module)


def train_and_convert(model: ModelHandle, prepared: Any, folded: int, config: QatConfig,
                      ctx: PassContext) -> PassResult:
    """The recovery loop on the fake-quant program, then convert_pt2e."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from ._torch_quant import _quiet, layer_report

    teacher = _teacher(model, ctx)
    train, val = recovery.training_data(ctx, ctx.seed)
    objective = objectives.Objective(teacher.obj, config.temperature, config.alpha)
    with _quiet():
        task = objectives.build_task(prepared, train, val, objective, set_mode=set_mode)
        log = recovery.train(task, config, ctx.seed, ctx.threads)
        converted = convert_pt2e(prepared)
    meta = {**model.meta, "precision": "int8", "quantized_by": "torchao.pt2e QAT"}
    details = {**recovery.details(log, task, train, val),
               "engine": "torchao PT2E QAT, X86InductorQuantizer (is_qat=True)",
               "teacher": "reference" if teacher is ctx.reference else "input model",
               "weights": "int8 per-channel", "activations": "uint8 (asymmetric)",
               "bn_folded_first": folded, "temperature": config.temperature,
               **layer_report(converted),
               "note": "run it with the compile runtime (inductor lowers q/dq to int8 kernels); "
                       "the validation metric is measured on the fake-quant model"}
    return PassResult(dataclasses.replace(model, obj=converted, meta=meta), True, None, details)


def _teacher(model: ModelHandle, ctx: PassContext) -> ModelHandle:
    import torch

    ref = ctx.reference
    if ref is not None and ref.format == "torch" and not isinstance(ref.obj, torch.jit.ScriptModule):
        return ref
    return model


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else ""
