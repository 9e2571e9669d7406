"""The machine fingerprint that goes with every result, so a number is never read without
the CPU, ISA, memory, OS and library versions that produced it.

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
from pathlib import Path
from typing import Any

# The ISA extensions that decide which kernels a runtime can use: AVX2/AVX-512 for FP32,
# VNNI for INT8 dot products (without it INT8 is often *not* faster), AMX for INT8/BF16
# tiles, AVX-512 BF16 for BF16 (OpenVINO picks BF16 silently when it is present).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")

# Distributions whose version changes results; onnxruntime has several wheel names.
LIBRARIES = ("torch", "onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "openvino",
             "nncf", "tensorrt", "onnx", "numpy", "pynvml", "infertune")

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES",
              "KMP_AFFINITY", "KMP_BLOCKTIME", "ORT_NUM_THREADS")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Pure parser of /proc/cpuinfo text (x86 layout; other keys tolerated).

    Returns:
        {"model": str|None, "flags": sorted list, "logical": int, "physical": int|None,
         "hypervisor": bool}; "physical" counts distinct (physical id, core id) pairs.
    """
    model, flags, logical, cores = None, set(), 0, set()
    phys_id = "0"
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and model is None:
            model = value
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "physical id":
            phys_id = value
        elif key == "core id":
            cores.add((phys_id, value))
    return {"model": model, "flags": sorted(flags), "logical": logical,
            "physical": len(cores) or None, "hypervisor": "hypervisor" in flags}


def isa_summary(flags: list[str] | set[str]) -> dict[str, bool]:
    """The ISA_FLAGS that matter, each present or not."""
    have = set(flags)
    return {flag: flag in have for flag in ISA_FLAGS}


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


def gpu_info(timeout_s: float = 10.0) -> list[dict[str, str]] | None:
    """NVIDIA GPUs from `nvidia-smi`, or None where there is no nvidia-smi or it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    query = "name,driver_version,memory.total,compute_cap"
    try:
        out = subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=timeout_s, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    keys = query.split(",")
    return [dict(zip(keys, (v.strip() for v in line.split(","))))
            for line in out.stdout.splitlines() if line.strip()]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _memory_total_mb() -> float:
    import psutil  # a dependency of infertune; light

    return psutil.virtual_memory().total / 2**20


def cpu_facts(cpuinfo_text: str | None = None) -> dict[str, Any]:
    """CPU model, cores, ISA flags and frequency governor of this machine."""
    import psutil

    text = cpuinfo_text if cpuinfo_text is not None else (_read("/proc/cpuinfo") or "")
    info = parse_cpuinfo(text)
    return {"model": info["model"] or platform.processor() or None,
            "physical_cores": psutil.cpu_count(logical=False) or info["physical"],
            "logical_cores": psutil.cpu_count(logical=True) or info["logical"],
            "isa": isa_summary(info["flags"]), "virtualized": info["hypervisor"],
            "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")}


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
