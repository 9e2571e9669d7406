"""Runtimes: each builds an artifact on disk from a ModelHandle and registers the opener the
measuring child uses to run it (see base.py). Importing this package imports no framework.

    from infertune.runtimes import RUNTIMES
    ok, why = RUNTIMES.get("openvino").available()

One module per runtime, imported here by name (one line each) so that it registers itself.
"""
from __future__ import annotations

from . import onnxruntime as _onnxruntime  # noqa: F401  (name: "onnxruntime")
from . import openvino as _openvino  # noqa: F401  (name: "openvino")
from . import tensorrt as _tensorrt  # noqa: F401  (name: "tensorrt")
from . import torch_compile as _torch_compile  # noqa: F401  (name: "compile")
from . import torch_eager as _torch_eager  # noqa: F401  (name: "torch")
from . import torchscript as _torchscript  # noqa: F401  (name: "torchscript")
from .base import RUNTIMES, ArtifactError, Incompatible, Runtime, Tolerance

# The order `--runtime all` measures them in: the eager baseline first (every speedup is
# relative to the first runtime), then the PyTorch variants, then the exported ones.
DEFAULT_ORDER = ("torch", "torchscript", "compile", "onnxruntime", "openvino", "tensorrt")

__all__ = ["ArtifactError", "DEFAULT_ORDER", "Incompatible", "RUNTIMES", "Runtime", "Tolerance"]
