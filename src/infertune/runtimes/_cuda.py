"""What the GPU runtimes share: whether a CUDA device is usable here, asked of the driver
itself, and device memory through `cuda-python`'s runtime bindings (no CUDA build of torch:
the project pins the CPU one).

`gpu_missing` is what a GPU runtime's `available()` calls. It checks exactly what a session
will need, and names every missing piece in one line:
- the Python packages (found with find_spec: nothing imported);
- a CUDA driver that initialises and lists a device: libcuda is loaded with ctypes and asked
  with cuInit / cuDeviceGetCount, the same calls every CUDA library starts with. nvidia-smi is
  not enough: it can list a GPU that this process cannot use (a container without the device
  nodes, a driver/library mismatch), and it says nothing when the driver library is missing.
The driver check runs at most once per process (cached); the measuring children are new
processes (subprocess, not fork), so initialising CUDA here does not reach them.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
from typing import Any, Sequence

from infertune.errors import RuntimeUnavailable

# cuda-python's runtime bindings: `cuda.bindings.runtime` (cuda-python >= 12.6), `cuda.cudart`
# before that (still an alias in 12.x, gone in 13).
CUDART_MODULES = ("cuda.bindings.runtime", "cuda.cudart")
CUDA_PYTHON = "cuda-python"
GPU_EXTRA = "pip install 'infertune[gpu]'"
_NO_DEVICE = 100  # CUDA_ERROR_NO_DEVICE


@functools.lru_cache(maxsize=1)
def driver_devices() -> tuple[int, str | None]:
    """(CUDA devices the driver lists, None) or (0, why there is none), from libcuda."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0, "no NVIDIA GPU: no CUDA driver (libcuda.so.1 not found)"
    rc = lib.cuInit(0)
    if rc == _NO_DEVICE:
        return 0, "no NVIDIA GPU: the CUDA driver finds no device"
    if rc != 0:
        return 0, f"no usable NVIDIA GPU: the CUDA driver does not initialise (cuInit error {rc})"
    count = ctypes.c_int(0)
    rc = lib.cuDeviceGetCount(ctypes.byref(count))
    if rc != 0 or count.value < 1:
        return 0, "no NVIDIA GPU: the CUDA driver lists no device"
    return count.value, None


def has_module(name: str) -> bool:
    """Whether `name` (dotted) can be imported, without importing more than its parents."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package
        return False


def gpu_missing(packages: Sequence[tuple[str, str]]) -> str | None:
    """None when every (module, what provides it) is installed and the driver lists a CUDA
    device; otherwise one line naming each missing piece (the GPU first)."""
    missing = []
    _, no_gpu = driver_devices()
    if no_gpu:
        missing.append(no_gpu)
    names = sorted({what for module, what in packages if not _importable(module)})
    if names:
        missing.append(f"{', '.join(names)} not installed")
    return "; ".join(missing) if missing else None


def _importable(module: str) -> bool:
    alternatives = CUDART_MODULES if module in CUDART_MODULES else (module,)
    return any(has_module(m) for m in alternatives)


def cudart():
    """cuda-python's runtime module (see CUDART_MODULES)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime  # cuda-python < 12.6
        except ImportError:
            raise RuntimeUnavailable(f"{CUDA_PYTHON} is not installed ({GPU_EXTRA})") from None
    return runtime


def check(result: Any) -> Any:
    """The value(s) of a cuda-python call, which returns (error, *values); raises on an error."""
    rt = cudart()
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != int(rt.cudaError_t.cudaSuccess):
        _, name = rt.cudaGetErrorName(err)
        name = name.decode() if isinstance(name, bytes) else name
        raise RuntimeError(f"CUDA call failed: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


class DeviceBuffer:
    """`nbytes` of device memory (cudaMalloc), freed by `free()`."""

    def __init__(self, nbytes: int):
        self.nbytes = max(int(nbytes), 1)
        self.ptr = int(check(cudart().cudaMalloc(self.nbytes)))

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFree(self.ptr))
            self.ptr = 0


def memory_used_mb() -> float:
    """Device memory in use on the current device, all processes (cudaMemGetInfo)."""
    free, total = check(cudart().cudaMemGetInfo())
    return (int(total) - int(free)) / 2**20


def device_name(index: int = 0) -> str:
    """The device's name as the CUDA runtime reports it."""
    props = check(cudart().cudaGetDeviceProperties(index))
    name = props.name
    return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).strip("\x00")
