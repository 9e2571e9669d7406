"""The machine fingerprint that goes with every result, so a number is never read without
the CPU, ISA, memory, OS and library versions that produced it (the CPU and GPU facts
themselves come from `infertune.machine`, which lower layers read too).

Library versions are read with importlib.metadata: importing torch or OpenVINO just to read
their version would cost seconds and memory, and could fail on a broken install.
"""
from __future__ import annotations

import copy
import functools
import os
import platform
import sys
from importlib import metadata
from typing import Any

from ..machine import ISA_FLAGS, cpu_facts, gpu_info, isa_summary, parse_cpuinfo

# Distributions whose version changes results; onnxruntime has several wheel names.
LIBRARIES = ("torch", "onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "openvino",
             "nncf", "tensorrt", "onnx", "numpy", "pynvml", "infertune")

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES",
              "KMP_AFFINITY", "KMP_BLOCKTIME", "ORT_NUM_THREADS")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    """Installed version of each distribution, None where it is absent (nothing imported)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def thread_settings() -> dict[str, Any]:
    """Thread-related environment and the CPUs this process may run on."""
    env = {k: os.environ.get(k) for k in THREAD_ENV}
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"env": env, "cpus_allowed": affinity}


def _memory_total_mb() -> float:
    import psutil  # a dependency of infertune; light

    return psutil.virtual_memory().total / 2**20


@functools.lru_cache(maxsize=1)
def _static_fingerprint() -> dict[str, Any]:
    # The parts that cannot change while this process lives; nvidia-smi costs ~0.1-1 s.
    return {"cpu": cpu_facts(), "memory_total_mb": round(_memory_total_mb(), 1),
            "os": {"system": platform.system(), "release": platform.release(),
                   "platform": platform.platform()},
            "python": {"version": platform.python_version(),
                       "implementation": platform.python_implementation(),
                       "executable": sys.executable},
            "hostname": platform.node(), "gpu": gpu_info(),
            "libraries": library_versions()}


def fingerprint() -> dict[str, Any]:
    """The whole fingerprint (static facts cached; thread settings read now)."""
    # A deep copy: callers may annotate their result's fingerprint without touching the cache.
    return {**copy.deepcopy(_static_fingerprint()), "threads": thread_settings()}


__all__ = ["ISA_FLAGS", "LIBRARIES", "cpu_facts", "fingerprint", "gpu_info", "isa_summary",
           "library_versions", "parse_cpuinfo", "thread_settings"]
