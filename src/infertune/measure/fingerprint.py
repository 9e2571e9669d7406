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
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

from ..machine import ISA_FLAGS, cpu_facts, gpu_info, isa_summary, parse_cpuinfo

# Distributions whose version changes results; onnxruntime has several wheel names.
LIBRARIES = ("torch", "onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "openvino",
             "nncf", "tensorrt", "tensorrt-cu12", "tensorrt-cu13", "cuda-python",
             "cuda-bindings", "onnx", "numpy", "pynvml", "infertune")

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


# Clocks move with load, temperature and power state, so they are read with each fingerprint
# (not cached); the max clocks and the power limit say whether the card was capped.
GPU_CLOCKS = ("index", "clocks.sm", "clocks.max.sm", "clocks.mem", "clocks.max.mem",
              "clocks.applications.graphics", "power.limit", "pstate", "persistence_mode")


def gpu_clocks(timeout_s: float = 10.0) -> list[dict[str, str]] | None:
    """Each NVIDIA GPU's current and max clocks, power limit and state, from nvidia-smi; None
    without it."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, f"--query-gpu={','.join(GPU_CLOCKS)}",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=timeout_s, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return [dict(zip(GPU_CLOCKS, (v.strip() for v in line.split(","))))
            for line in out.stdout.splitlines() if line.strip()]


def fingerprint() -> dict[str, Any]:
    """The whole fingerprint (static facts cached; thread settings and GPU clocks read now)."""
    # A deep copy: callers may annotate their result's fingerprint without touching the cache.
    static = copy.deepcopy(_static_fingerprint())
    if static.get("gpu"):
        static["gpu_clocks"] = gpu_clocks()
    return {**static, "threads": thread_settings()}


__all__ = ["GPU_CLOCKS", "ISA_FLAGS", "LIBRARIES", "cpu_facts", "fingerprint", "gpu_clocks",
           "gpu_info", "isa_summary", "library_versions", "parse_cpuinfo", "thread_settings"]
