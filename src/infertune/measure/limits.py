"""The machine's measured limits: FP32 peak, INT8 peak and memory bandwidth, at a thread count.

These are the roofline's ceilings that a model's latency is read against ("11 GMAC at
224 GFLOP/s cannot take less than 100 ms"). They are *measured*, not read from a datasheet:
a shared or throttled machine reaches what it reaches, and that is the ceiling a candidate
meets here.

How each figure is measured (best of several calls after warm-up; best, not median, because
a ceiling is what the machine *can* do, and interference from other processes only ever
slows a call down):
- FP32: `torch.mm` on two 1536x1536 float32 matrices (2·N³ floating-point operations per
  call): large enough that the GEMM kernel runs at its blocked steady state (27 MiB of
  operands, beyond L2, as real convolution layers are), small enough for ~50-100 ms a call
  on 2 cores.
- INT8: ONNX Runtime `MatMulInteger` (uint8 x int8 -> int32, 2048x2048) and
  `torch._int_mm` (int8 x int8 -> int32, oneDNN), the faster of the two. Both are really
  integer GEMMs: MatMulInteger runs MLAS's QGEMM kernels (VNNI `vpdpbusd` where the CPU has
  it; the same kernels ORT's QDQ INT8 convolutions use) and produces exact int32 sums, and
  `_int_mm` has integer inputs and an int32 output with no float scale anywhere (there is
  nothing to dequantize to). As a cross-check the result says so when the INT8 rate is not
  above the FP32 rate, which is what a CPU without int8 dot-product instructions shows.
- Memory bandwidth: a copy of a 256 MiB float32 array into a preallocated, already touched
  one (numpy `copyto`, single-threaded, and torch `copy_` at the thread count, the faster);
  bytes read + written / time, as STREAM's "copy" counts it (the cache's write-allocate
  read of the destination is not counted).

The result is cached per machine (CPU, cores, memory, host, library versions) and thread
count in the user's cache folder, since the probe costs a few seconds; `refresh=True`
measures again.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .._atomic import write_text
from ..machine import cache_dir
from .fingerprint import fingerprint
from .rounds import default_threads

FP32_N = 1536
INT8_N = 2048
MEM_BYTES = 256 * 2**20
# Per probe: at least MIN_RUNS timed calls, more while under BUDGET_S (and at most MAX_RUNS).
MIN_RUNS, MAX_RUNS, BUDGET_S = 3, 10, 0.8
WARMUP_RUNS = 2  # oneDNN creates its primitive on the first call at a shape; MLAS packs B
LIMIT_KEYS = ("fp32_gflops", "int8_gops", "mem_gbs")
CACHE_VERSION = 1


def best_rate(fn: Callable[[], Any], work: float, *, warmup: int = WARMUP_RUNS,
              min_runs: int = MIN_RUNS, max_runs: int = MAX_RUNS,
              budget_s: float = BUDGET_S) -> float:
    """Work units per second of the fastest timed call of `fn` (`work` units per call)."""
    for _ in range(warmup):
        fn()
    best, spent, runs = float("inf"), 0.0, 0
    while runs < min_runs or (runs < max_runs and spent < budget_s):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return work / best


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` for the block, restored after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def probe_fp32(threads: int, n: int | None = None) -> float:
    """GFLOP/s of a float32 torch.mm (module docstring)."""
    import torch

    n = n or FP32_N
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator) for _ in range(2))
    out = torch.empty(n, n)
    with torch_threads(threads), torch.inference_mode():
        return best_rate(lambda: torch.mm(a, b, out=out), 2.0 * n**3) / 1e9


def _matmul_integer_session(n: int, threads: int):
    """An ORT session of one MatMulInteger (uint8 A input x int8 B constant -> int32)."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.integers(-128, 128, (n, n), dtype=np.int8), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "int8_probe",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, onnx.IR_VERSION)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session, rng.integers(0, 256, (n, n), dtype=np.uint8)


def probe_int8_ort(threads: int, n: int | None = None) -> float:
    """GOP/s of ONNX Runtime's MatMulInteger (MLAS QGEMM; module docstring)."""
    n = n or INT8_N
    session, a = _matmul_integer_session(n, threads)
    return best_rate(lambda: session.run(None, {"A": a}), 2.0 * n**3) / 1e9


def probe_int8_torch(threads: int, n: int | None = None) -> float:
    """GOP/s of torch._int_mm (int8 x int8 -> int32; module docstring)."""
    import torch

    n = n or INT8_N
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=generator)
            for _ in range(2))
    with torch_threads(threads), torch.inference_mode():
        return best_rate(lambda: torch._int_mm(a, b), 2.0 * n**3) / 1e9


def probe_memory(threads: int, nbytes: int | None = None) -> float:
    """GB/s of a large array copy, bytes read + written (module docstring)."""
    import numpy as np
    import torch

    nbytes = nbytes or MEM_BYTES
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.zeros_like(src)  # zeros_like touches every page: no page faults in the timing
    moved = 2.0 * src.nbytes
    rates = [best_rate(lambda: np.copyto(dst, src), moved, min_runs=3, max_runs=5)]
    src_t, dst_t = torch.from_numpy(src), torch.from_numpy(dst)
    with torch_threads(threads):
        rates.append(best_rate(lambda: dst_t.copy_(src_t), moved, min_runs=3, max_runs=5))
    return max(rates) / 1e9


def _attempt(fn: Callable[[int], float], threads: int) -> tuple[float | None, str | None]:
    try:
        return round(float(fn(threads)), 1), None
    except Exception as exc:  # an absent or broken library: the figure is null, with why
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def measure_limits(threads: int) -> dict[str, Any]:
    """Runs the three probes now (a few seconds) at `threads` threads; nothing cached."""
    fp32, fp32_note = _attempt(probe_fp32, threads)
    ort_int8, ort_note = _attempt(probe_int8_ort, threads)
    torch_int8, torch_note = _attempt(probe_int8_torch, threads)
    mem, mem_note = _attempt(probe_memory, threads)
    int8_rates = {"onnxruntime MatMulInteger": ort_int8, "torch._int_mm": torch_int8}
    measured = {k: v for k, v in int8_rates.items() if v is not None}
    int8 = max(measured.values()) if measured else None
    notes = {"fp32_gflops": fp32_note, "mem_gbs": mem_note,
             "int8_gops": None if measured else f"{ort_note}; {torch_note}"}
    if int8 is not None and fp32 is not None and int8 <= fp32:
        notes["int8_gops"] = ("the INT8 GEMM is not faster than FP32 here: no int8 "
                              "dot-product instructions (VNNI/AMX) in use")
    return {
        "fp32_gflops": fp32, "int8_gops": int8, "mem_gbs": mem, "threads": int(threads),
        "int8_probes": int8_rates,
        "notes": {k: v for k, v in notes.items() if v},
        "method": (f"best of >= {MIN_RUNS} calls after {WARMUP_RUNS} warm-up, at "
                   f"{threads} thread(s). FP32: torch.mm {FP32_N}x{FP32_N} float32, "
                   f"2*N^3 flop. INT8: the faster of ONNX Runtime MatMulInteger "
                   f"(u8 x s8 -> s32, MLAS QGEMM) and torch._int_mm (s8 x s8 -> s32), "
                   f"{INT8_N}x{INT8_N}, 2*N^3 ops. Memory: copy of {MEM_BYTES >> 20} MiB "
                   "float32 (numpy copyto 1 thread, torch copy_ at the thread count; the "
                   "faster), bytes read + written / time."),
    }


def machine_key(machine: dict[str, Any], threads: int) -> str:
    """A short hash of what makes the limits of one machine differ from another's."""
    cpu = machine.get("cpu", {})
    libraries = machine.get("libraries", {})
    identity = {"version": CACHE_VERSION, "threads": int(threads),
                "host": machine.get("hostname"), "cpu": cpu.get("model"),
                "cores": [cpu.get("physical_cores"), cpu.get("logical_cores")],
                "isa": cpu.get("isa"), "memory_mb": machine.get("memory_total_mb"),
                "libraries": {k: libraries.get(k) for k in ("torch", "onnxruntime", "numpy")}}
    text = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent or half-broken: measure again (the write is atomic, but be safe)
    return data if isinstance(data, dict) and all(k in data for k in LIMIT_KEYS) else None


def machine_limits(threads: int | None = None, *, refresh: bool = False,
                   cache: bool = True) -> dict[str, Any]:
    """The machine's FP32/INT8 peaks and memory bandwidth at `threads` (module docstring).

    Args:
        threads: the thread count (default: physical cores, as the harness uses).
        refresh: measure again even when a cached result exists.
        cache: read and write the cache file (`cache_dir()/limits-<key>.json`).

    Returns:
        {"fp32_gflops", "int8_gops", "mem_gbs" (each null with a `notes` entry when it could
        not be measured), "threads", "int8_probes", "notes", "method", "measured_at",
        "cached" (whether this came from the cache), "cache_file"}.
    """
    threads = int(threads or default_threads())
    path = cache_dir() / f"limits-{machine_key(fingerprint(), threads)}.json"
    if cache and not refresh:
        hit = _read_cache(path)
        if hit is not None:
            return {**hit, "cached": True, "cache_file": str(path)}
    result = {**measure_limits(threads),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if cache:
        write_text(path, json.dumps(result, indent=2))
    return {**result, "cached": False, "cache_file": str(path) if cache else None}


def roofline(macs: int, mac_bytes: int, limits: dict[str, Any]) -> dict[str, Any]:
    """Where a model with `macs` multiply-accumulates moving `mac_bytes` bytes sits against
    the measured limits: its arithmetic intensity (2 ops per MAC, per byte) against the ridge
    point (FP32 peak / bandwidth), and the latency floors 2·MACs / peak.

    A model left of the ridge is memory-bound (its bytes take longer than its operations);
    the floors ignore memory traffic, so they are lower bounds only.
    """
    fp32, int8, mem = (limits.get(k) for k in LIMIT_KEYS)
    ops = 2.0 * macs
    flop_per_byte = ops / mac_bytes if mac_bytes else None
    ridge = fp32 / mem if fp32 and mem else None
    bound = None
    if ridge is not None and flop_per_byte is not None:
        bound = "compute-bound" if flop_per_byte >= ridge else "memory-bound"
    return {
        "flop_per_byte": None if flop_per_byte is None else round(flop_per_byte, 3),
        "ridge_flop_per_byte": None if ridge is None else round(ridge, 3),
        "bound": bound,
        "fp32_floor_ms": round(ops / (fp32 * 1e9) * 1e3, 3) if fp32 else None,
        "int8_floor_ms": round(ops / (int8 * 1e9) * 1e3, 3) if int8 else None,
        "memory_floor_ms": round(mac_bytes / (mem * 1e9) * 1e3, 3) if mem else None,
        "note": "floors = 2*MACs / measured peak and bytes moved / measured bandwidth, batch 1;"
                " lower bounds only (every op, or every byte, at the measured peak rate)",
    }


__all__ = ["machine_limits", "measure_limits", "roofline", "cache_dir", "machine_key"]
