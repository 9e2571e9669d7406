"""What a pass is. A pass is pure: ModelHandle in, new ModelHandle out, the input untouched.

Each pass module defines a small frozen Config dataclass (validated in __post_init__) and one
`apply(model, config, ctx) -> PassResult` function, registered with `@register_pass`. A pass
that does not apply (no BatchNorm to fold) returns the model unchanged with `applied=False`
and the reason: that is a result, not an error. Only bad configs raise (ConfigError).
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import ConfigError
from ..registry import Registry
from ..types import ModelHandle


@dataclass
class PassContext:
    """What a pass may use besides the model; shared by every pass of one pipeline.

    Attributes:
        workdir: where passes write the artifacts they produce (ONNX files, ...).
        calibration: a Dataset (infertune.data) for passes that need data, or None.
        reference: the original float model, for passes that compare against it.
        seed: for anything random (calibration subsets, fine-tuning).
        threads: CPU threads a pass may use.
        train: a Dataset (labelled or not) for the recovery passes (finetune, distill,
            qat), usually larger than `calibration`; they fall back to `calibration`.
        validation: a Dataset for their early stop; None: they hold out 10% of train.
        cache_dir: a folder shared by the pipelines of one run (optimize: RUN_DIR/cache),
            where content-keyed results that cost time and do not depend on the recipe —
            calibrated ranges — are kept for the other candidates; None: the workdir.
    """

    workdir: Path
    calibration: Any = None
    reference: ModelHandle | None = None
    seed: int = 0
    threads: int | None = None
    train: Any = None
    validation: Any = None
    cache_dir: Path | None = None


@dataclass(frozen=True)
class PassResult:
    """The new model and what the pass did (layers changed, kept, why; sizes)."""

    model: ModelHandle
    applied: bool
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def report(self, name: str) -> dict[str, Any]:
        return {"pass": name, "applied": self.applied, "reason": self.reason,
                "format": self.model.format, **dict(self.details)}


ApplyFn = Callable[[ModelHandle, Any, PassContext], PassResult]


@dataclass(frozen=True)
class PassSpec:
    """A registered pass.

    Attributes:
        name: registry key (`fold_bn`).
        config: its frozen Config dataclass.
        accepts: model formats it takes ("torch", "onnx"); a torch model given to an
            onnx-only pass is exported first by `apply_passes`.
        apply: the function.
        description: one line for `infertune list passes`.
        needs_data: whether it needs calibration/training data in the context.
        trains: whether it trains (recovery passes): `apply` then gives it `train` data.
        exact: a rewrite that changes no output (folding, fusion, cleanup, layout): when it
            finds nothing to do the model is still what a recipe naming it promises, so
            `optimize` keeps the candidate (labelled "nothing to do"); any other pass that
            does not apply makes the candidate skipped with the pass's reason.
    """

    name: str
    config: type
    accepts: tuple[str, ...]
    apply: ApplyFn
    description: str
    needs_data: bool = False
    trains: bool = False
    exact: bool = False

    def options(self) -> list[dict[str, Any]]:
        """The Config's fields, for `infertune list passes`."""
        hints = typing.get_type_hints(self.config)
        return [{"name": f.name, "type": _type_name(hints[f.name]),
                 "default": None if f.default is dataclasses.MISSING else f.default}
                for f in dataclasses.fields(self.config)]


PASSES: Registry[PassSpec] = Registry("pass")


def register_pass(name: str, *, config: type, accepts: tuple[str, ...], description: str,
                  needs_data: bool = False, trains: bool = False,
                  exact: bool = False) -> Callable[[ApplyFn], ApplyFn]:
    """Decorator registering `apply` under `name`."""

    def decorator(fn: ApplyFn) -> ApplyFn:
        PASSES.add(name, PassSpec(name, config, accepts, fn, description, needs_data, trains,
                                  exact))
        return fn

    return decorator


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def parse_pass_arg(text: str) -> tuple[str, dict[str, str]]:
    """'int8_static:method=entropy,per_channel=true' -> ('int8_static', {...})."""
    name, _, rest = text.partition(":")
    options: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--pass {text!r}: expected key=value, got {item!r}")
        options[key.strip()] = value.strip()
    return name.strip(), options


def config_from_options(spec: PassSpec, options: Mapping[str, Any]) -> Any:
    """Builds spec.config from string (CLI) or typed (YAML/API) values; unknown keys rejected."""
    fields = {f.name: f for f in dataclasses.fields(spec.config)}
    hints = typing.get_type_hints(spec.config)
    kwargs = {}
    for key, value in options.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; options: {', '.join(fields) or 'none'}"
            raise ConfigError(f"pass {spec.name}: unknown option {key!r}{hint}")
        kwargs[key] = coerce(value, hints[key], f"pass {spec.name}: option {key}")
    try:
        return spec.config(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"pass {spec.name}: {exc}") from None


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Converts a CLI string to the annotated type (bool, int, float, str, Literal, Optional, tuple)."""
    if not isinstance(value, str):
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value.lower() in ("none", "null", ""):
            return None
        return coerce(value, next(a for a in args if a is not type(None)), where)
    if origin is typing.Literal:
        if value not in [str(a) for a in args]:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, args))}, not {value!r}")
        return next(a for a in args if str(a) == value)
    if origin is tuple:
        return tuple(coerce(v, args[0], where) for v in filter(None, value.split("+")))
    return _scalar(value, tp, where)


def _scalar(value: str, tp: Any, where: str) -> Any:
    if tp is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if tp in (int, float):
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(f"{where} must be {tp.__name__}, not {value!r}") from None
    return value


def workfile(ctx: PassContext, stem: str, suffix: str) -> Path:
    """A fresh path in the pipeline's workdir for an artifact a pass writes."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    for i in range(10_000):
        path = ctx.workdir / f"{stem}{'-' + str(i) if i else ''}{suffix}"
        if not path.exists():
            return path
    raise RuntimeError(f"no free file name for {stem}{suffix} in {ctx.workdir}")
