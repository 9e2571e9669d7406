"""Runtimes: each builds an artifact on disk from a ModelHandle and registers the opener the
measuring child uses to run it (see base.py). Importing this package imports no framework.

    from infertune.runtimes import RUNTIMES
    ok, why = RUNTIMES.get("openvino").available()
    RUNTIMES.ordered()   # the order `--runtime all` measures them in (Runtime.rank)

One module per runtime holds everything about it (base.py lists what); it is imported here
by name (one line each) so that it registers itself. What other packages need to know about
a runtime (artifact, opener module, run.py loader, Triton backend, planning prior, family,
layer timing) they read from its registry entry, never from a table of their own.
"""
from __future__ import annotations

from . import onnxruntime as _onnxruntime  # noqa: F401  (name: "onnxruntime")
from . import onnxruntime_cuda as _onnxruntime_cuda  # noqa: F401  (name: "onnxruntime-cuda")
from . import onnxruntime_tensorrt as _onnxruntime_trt  # noqa: F401  ("onnxruntime-tensorrt")
from . import openvino as _openvino  # noqa: F401  (name: "openvino")
from . import tensorrt as _tensorrt  # noqa: F401  (name: "tensorrt")
from . import torch_compile as _torch_compile  # noqa: F401  (name: "compile")
from . import torch_eager as _torch_eager  # noqa: F401  (name: "torch")
from . import torchscript as _torchscript  # noqa: F401  (name: "torchscript")
from .base import (RUNTIMES, ArtifactError, Incompatible, Loader, Runtime, RuntimeRegistry,
                   Tolerance, TritonBackend)

__all__ = ["ArtifactError", "Incompatible", "Loader", "RUNTIMES", "Runtime", "RuntimeRegistry",
           "Tolerance", "TritonBackend"]
