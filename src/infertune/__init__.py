"""infertune: make a trained vision model fast for deployment within an accuracy budget.

Importing this package costs nothing: no ML framework is imported until a function that
needs one is called (a test enforces it).
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import InfertuneError
from .types import InputSpec, ModelHandle


def load(source: str, **options):
    """Loads a model from a zoo name, a Darknet cfg[:weights], ONNX, TorchScript or checkpoint."""
    from .load import load_model

    return load_model(source, **options)


def profile(model, **options):
    """Static profile (params, MACs, bytes, per layer) of a ModelHandle or a model source."""
    from .api import profile as _profile
    from .commands.options import ProfileOptions, split_options

    return _profile(model, *split_options(ProfileOptions, options))


def export(model, fmt: str, out: str, **options):
    """Exports a ModelHandle or a model source to `fmt` ("onnx") at `out`."""
    from .api import export as _export
    from .commands.options import ExportOptions, split_options

    return _export(model, *split_options(ExportOptions, options, fmt=fmt, out=out))


__all__ = ["InfertuneError", "InputSpec", "ModelHandle", "load", "profile", "export", "__version__"]
