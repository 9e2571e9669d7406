"""ONNX Runtime on the CPU, as the harness opens it (the runtime module will extend this).

Settings, and why: every graph optimisation on (ORT_ENABLE_ALL, what a deployment uses);
`intra_op_num_threads` = the measured thread count, so that runtimes are compared at equal
threads; one inter-op thread and sequential execution, because a CNN backbone is a chain of
ops with nothing to run in parallel and extra pools only compete for the same cores.

onnxruntime is imported at module level on purpose: the harness imports this module in the
child *before* opening, and reports that import time apart from the cold start.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
import onnxruntime as ort

from ..errors import ModelFileError
from .session import OPENERS

# Options a caller may pass, besides "threads": "config" entries for add_session_config_entry
# (e.g. {"session.intra_op.allow_spinning": "0"}) and "optimization" ("all"|"extended"|
# "basic"|"disable").
_LEVELS = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
           "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
           "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
           "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}


def session_options(options: Mapping[str, Any]) -> ort.SessionOptions:
    """The SessionOptions described in the module docstring."""
    so = ort.SessionOptions()
    so.graph_optimization_level = _LEVELS[options.get("optimization", "all")]
    so.intra_op_num_threads = int(options.get("threads") or os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for key, value in dict(options.get("config", {})).items():
        so.add_session_config_entry(str(key), str(value))
    return so


class OrtSession:
    """One ORT InferenceSession with a single image input."""

    def __init__(self, artifact: str, options: Mapping[str, Any]):
        if not os.path.isfile(artifact):
            raise ModelFileError("no such ONNX file", path=artifact)
        self.options = dict(options)
        self._sess = ort.InferenceSession(artifact, session_options(options),
                                          providers=["CPUExecutionProvider"])
        inputs = self._sess.get_inputs()
        if len(inputs) != 1:
            raise ModelFileError(f"expected one input, found {len(inputs)}", path=artifact)
        self._input = inputs[0].name

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return self._sess.run(None, {self._input: x})

    def close(self) -> None:
        self._sess = None

    def describe(self) -> dict[str, Any]:
        return {"providers": self._sess.get_providers() if self._sess else None,
                "intra_op_num_threads": int(self.options.get("threads") or 0),
                "optimization": self.options.get("optimization", "all"),
                "onnxruntime": ort.__version__}


@OPENERS.register("onnxruntime")
def open_onnxruntime(artifact: str, options: Mapping[str, Any]) -> OrtSession:
    """Opens an .onnx file with ONNX Runtime's CPU execution provider."""
    return OrtSession(artifact, options)
