"""Applies passes in order, converting formats where a pass needs another one (a torch model
given to an ONNX-only pass is exported first: format conversion is just another step)."""
from __future__ import annotations

import os
from typing import Any, Sequence

from ..errors import ConfigError
from ..export import export_onnx
from ..types import ModelHandle
from . import _trained_cache as trained_cache
from .base import PASSES, PassContext, PassResult, config_from_options, workfile


def model_bytes(model: ModelHandle) -> int:
    """Bytes the model's weights take: parameters + buffers (torch), file + external data (onnx),
    .xml + .bin (openvino)."""
    if model.format == "openvino":
        return sum(os.path.getsize(p) for p in (str(model.path), str(model.path)[:-4] + ".bin")
                   if os.path.exists(p))
    if model.format == "onnx":
        path = str(model.path)
        extra = path + ".data"
        return os.path.getsize(path) + (os.path.getsize(extra) if os.path.exists(extra) else 0)
    tensors = list(model.obj.parameters()) + list(model.obj.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def to_onnx(model: ModelHandle, ctx: PassContext) -> ModelHandle:
    """The conversion step: a torch handle exported to an ONNX file in the workdir."""
    out = workfile(ctx, _stem(model), ".onnx")
    summary = export_onnx(model, out)
    return ModelHandle(format="onnx", path=str(out), input_spec=model.input_spec,
                       name=model.name, source=model.source,
                       meta={**model.meta, "exported_from": "torch",
                             "export_max_abs_diff": summary.get("max_abs_diff")})


def _stem(model: ModelHandle) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in model.name)[:60] or "model"


def resolve_steps(steps: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """(name, options-dict-or-config) -> (name, Config); unknown passes/options raise ConfigError."""
    resolved = []
    for name, options in steps:
        spec = PASSES.get(name)
        config = options if isinstance(options, spec.config) else config_from_options(spec, options or {})
        resolved.append((name, config))
    return resolved


def apply_passes(model: ModelHandle, steps: Sequence[tuple[str, Any]],
                 ctx: PassContext) -> tuple[ModelHandle, list[dict[str, Any]]]:
    """Runs `steps` in order; returns the final model and one report per step."""
    reports = []
    for name, config in resolve_steps(steps):
        spec = PASSES.get(name)
        if spec.needs_data and ctx.calibration is None and not (spec.trains and ctx.train is not None):
            raise ConfigError(f"pass {name} needs data: pass --data (e.g. --data sample)")
        if model.format not in spec.accepts:
            if "onnx" in spec.accepts and model.format == "torch":
                model = to_onnx(model, ctx)
                reports.append({"pass": "export_onnx", "applied": True, "reason": None,
                                "format": "onnx", "note": f"{name} works on ONNX"})
            else:
                raise ConfigError(f"pass {name} takes {'/'.join(spec.accepts)} models, "
                                  f"not {model.format}")
        before = model_bytes(model)
        result = _apply(spec, name, model, config, ctx)
        after = model_bytes(result.model)
        reports.append({**result.report(name), "config": _config_dict(config),
                        "bytes_before": before, "bytes_after": after})
        model = result.model
    return model, reports


def _apply(spec: Any, name: str, model: ModelHandle, config: Any, ctx: PassContext) -> PassResult:
    """spec.apply, except that a training pass in a run with a shared cache trains once per
    starting point (`_trained_cache`: later pipelines load the weights it published)."""
    if not (spec.trains and ctx.cache_dir is not None and model.format == "torch"):
        return spec.apply(model, config, ctx)
    digest = trained_cache.key(model, name, config, ctx)
    cached = trained_cache.load(model, digest, ctx)
    if cached is not None:
        return cached
    result: PassResult = spec.apply(model, config, ctx)
    trained_cache.save(model, result, digest, ctx)
    return result


def _config_dict(config: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}
