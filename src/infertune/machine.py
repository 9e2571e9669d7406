"""Facts about this machine that every layer may read: the CPU (model, cores, ISA flags), its
native low-precision arithmetic, the NVIDIA GPUs, and where infertune keeps its caches.

They live here, below everything, because a pass (is bf16 native here?), a runtime (is there
a GPU?) and a loader (where do converted models go?) need them as much as the measuring
harness, which adds them to every result's fingerprint (`measure.fingerprint`). Reading them
imports no ML framework.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

# The ISA extensions that decide which kernels a runtime can use: AVX2/AVX-512 for FP32,
# VNNI for INT8 dot products (without it INT8 is often *not* faster), AMX for INT8/BF16
# tiles, AVX-512 BF16 for BF16 (OpenVINO picks BF16 silently when it is present).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")

NATIVE_FLAGS = {"fp16": ("avx512_fp16", "amx_fp16"), "bf16": ("avx512_bf16", "amx_bf16")}
# INT8 dot-product instructions that accumulate u8×s8 products straight into 32 bits. An x86
# CPU without any of them runs INT8 convolutions on AVX2/AVX-512BW's vpmaddubsw, which adds
# pairs of products into a *saturating* 16-bit sum: with full 8-bit weights those sums clip
# (measured on a Zen 3 EPYC, AVX2 only: ORT's S8S8 QDQ of a small CNN fell from 44 dB SQNR to
# 11 dB). ONNX Runtime's guidance there is `reduce_range` (7-bit weights).
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


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


def native_support(precision: str) -> dict[str, Any]:
    """Whether this CPU has instructions for `precision` arithmetic (from /proc/cpuinfo)."""
    isa = cpu_facts().get("isa") or {}
    have = [f for f in NATIVE_FLAGS[precision] if isa.get(f)]
    note = (f"native on this CPU ({', '.join(have)})" if have else
            f"this CPU has no {' or '.join(NATIVE_FLAGS[precision])}: runtimes emulate "
            f"{precision} or convert back to float32, expect it to be slower")
    return {"native": bool(have), "note": note}


def int8_sums_saturate(isa: dict[str, bool] | None = None, machine: str | None = None) -> bool:
    """Whether this CPU's INT8 kernels add pairs of 8-bit products in saturating 16-bit sums:
    an x86 CPU with none of INT8_DOT_FLAGS. False elsewhere (ARM's dot products and widening
    multiplies do not saturate). `isa`/`machine` default to this machine's."""
    arch = (machine if machine is not None else platform.machine()).lower()
    if arch not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    isa = isa if isa is not None else cpu_facts().get("isa") or {}
    return not any(isa.get(flag) for flag in INT8_DOT_FLAGS)


def int8_weight_warning(weight_bits: int, isa: dict[str, bool] | None = None,
                        machine: str | None = None) -> str | None:
    """What an ONNX Runtime INT8 model with `weight_bits`-bit weights risks on this CPU: a
    warning where its kernels' 16-bit sums saturate and the weights use all 8 bits (a model
    built on a CPU with VNNI/AMX, then run on one without: 11 dB SQNR instead of 44 dB on a
    small CNN, README); None where it is safe (7-bit weights, or 32-bit dot products)."""
    if weight_bits < 8 or not int8_sums_saturate(isa, machine):
        return None
    return (f"this x86 CPU has none of {'/'.join(INT8_DOT_FLAGS)}: ONNX Runtime's INT8 "
            "kernels add pairs of 8-bit products in saturating 16-bit sums, and this model's "
            "weights use all 8 bits, so its outputs can be far from the ones measured; "
            "rebuild it on this machine (infertune quantizes with 7-bit weights here)")


def cache_dir() -> Path:
    """$INFERTUNE_CACHE_DIR, else $XDG_CACHE_HOME/infertune, else ~/.cache/infertune."""
    if os.environ.get("INFERTUNE_CACHE_DIR"):
        return Path(os.environ["INFERTUNE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "infertune"


__all__ = ["INT8_DOT_FLAGS", "ISA_FLAGS", "NATIVE_FLAGS", "cache_dir", "cpu_facts", "gpu_info",
           "int8_sums_saturate", "int8_weight_warning", "isa_summary", "native_support",
           "parse_cpuinfo"]
