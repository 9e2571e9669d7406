"""`package.module:factory` -> ModelHandle. Importing user code runs it, so this loader is
refused unless the user asks for it explicitly with --trust-code (trust_code=True)."""
from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from ..errors import ConfigError, ModelFileError, UnsupportedModel
from ..types import InputSpec, ModelHandle
from .zoo import seeded

if TYPE_CHECKING:
    from . import LoadOptions


def load_code(ref: str, opts: "LoadOptions") -> ModelHandle:
    if not opts.trust_code:
        raise ConfigError(
            f"{ref}: loading a model from Python code imports and runs that code; "
            "pass --trust-code if you trust it")
    module_name, _, factory_name = ref.partition(":")
    factory = _import_factory(module_name, factory_name, ref)
    try:
        model = seeded(opts.seed, factory)
    except Exception as exc:
        raise ModelFileError(f"factory {factory_name}() failed: {type(exc).__name__}: {exc}",
                             path=ref) from None
    return _handle_for(model, ref, opts)


def _import_factory(module_name: str, factory_name: str, ref: str):
    # The user's current directory is importable, as with `python -c`.
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelFileError(f"cannot import {module_name!r}: {exc}", path=ref) from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ModelFileError(f"{module_name!r} has no callable {factory_name!r}", path=ref)
    return factory


def _handle_for(model, ref: str, opts: "LoadOptions") -> ModelHandle:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise UnsupportedModel(f"factory returned {type(model).__name__}, not a torch.nn.Module",
                               path=ref)
    size = opts.input_size or getattr(model, "input_size", None)
    if size is None:
        raise ConfigError(f"{ref}: cannot tell the model's input size; pass --input-size HxW")
    channels = int(getattr(model, "in_channels", 3))
    return ModelHandle(format="torch", obj=model.eval(), name=ref, source=ref,
                       input_spec=InputSpec(shape=("batch", channels, int(size[-2]), int(size[-1]))),
                       meta={"family": "user-code", "num_classes": opts.num_classes})
