"""Energy counters, where the machine exposes them: Linux powercap (RAPL) on the CPU, NVML
on an NVIDIA GPU. Where none is readable the answer is None *with the reason*; infertune
never turns a TDP or a utilisation figure into joules and calls it a measurement.

What a reading means: RAPL's package domain counts the whole socket (every core, the idle
ones and other processes' too), so joules per image include the package's idle power over
the loop. That is the honest cost of an image on this machine, and it is stated as such.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

POWERCAP_ROOT = Path("/sys/class/powercap")
# Top-level package zones only ("intel-rapl:0", "intel-rapl:1"): their sub-zones
# ("intel-rapl:0:0" core, dram...) are already counted in the package and would double it.
# AMD CPUs expose their RAPL counters under the same driver name.
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


class EnergyMeter(Protocol):
    source: str

    def start(self) -> None: ...

    def stop(self) -> float:
        """Joules since start()."""


def counter_delta(start: int, end: int, max_range: int) -> int:
    """Difference of a wrapping counter read twice, assuming at most one wrap in between.

    The counter runs 0..max_range and starts again at 0; at the package powers of a CPU a
    wrap takes tens of minutes or more, far longer than one timed loop.
    """
    return end - start if end >= start else end + max_range - start


@dataclass
class _Zone:
    path: Path
    max_range: int

    def read(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


class RaplMeter:
    """Sum of the package zones' `energy_uj` counters, wraparound handled per zone."""

    def __init__(self, zones: list[_Zone]):
        self._zones = zones
        self._start: list[int] = []
        self.source = "rapl:" + ",".join(z.path.name for z in zones)

    def start(self) -> None:
        self._start = [z.read() for z in self._zones]

    def stop(self) -> float:
        end = [z.read() for z in self._zones]
        uj = sum(counter_delta(s, e, z.max_range)
                 for s, e, z in zip(self._start, end, self._zones))
        return uj / 1e6


def rapl_meter(root: Path = POWERCAP_ROOT) -> tuple[RaplMeter | None, str | None]:
    """A RAPL meter over the package zones under `root`, or (None, why not)."""
    if not root.is_dir():
        return None, f"no powercap interface ({root} absent: not Linux, or no RAPL driver)"
    dirs = sorted(d for d in root.iterdir() if _PACKAGE_ZONE.match(d.name))
    if not dirs:
        return None, f"no RAPL package zone under {root} (virtual machine or unsupported CPU)"
    try:
        zones = [_Zone(d, int((d / "max_energy_range_uj").read_text().strip())) for d in dirs]
        for z in zones:
            z.read()
    except PermissionError:
        return None, (f"RAPL counters under {root} are readable by root only (the default since "
                      "CVE-2020-8694); run as root or relax the file mode to measure energy")
    except (OSError, ValueError) as exc:
        return None, f"RAPL counters under {root} unreadable: {exc}"
    return RaplMeter(zones), None


class NvmlMeter:
    """Total energy of one NVIDIA GPU (NVML, Volta or newer), in millijoules."""

    def __init__(self, pynvml, handle, index: int):
        self._nvml, self._handle = pynvml, handle
        self._start = 0
        self.source = f"nvml:gpu{index}"

    def start(self) -> None:
        self._start = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)

    def stop(self) -> float:
        end = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        return (end - self._start) / 1e3


def nvml_meter(index: int = 0) -> tuple[NvmlMeter | None, str | None]:
    """An NVML meter for GPU `index` if pynvml is importable and the GPU counts energy."""
    try:
        import pynvml  # optional: only a GPU machine has it
    except ImportError:
        return None, "pynvml is not installed: GPU energy is not readable"
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # NVMLError has many subclasses; any means "not readable"
        return None, f"NVML energy counter not readable on GPU {index}: {exc}"
    return NvmlMeter(pynvml, handle, index), None


def open_meter(device: str = "cpu", *, root: Path = POWERCAP_ROOT
               ) -> tuple[EnergyMeter | None, str | None]:
    """The meter for where the runtime computes: NVML for "cuda[:i]", RAPL otherwise."""
    if device.startswith("cuda"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return nvml_meter(index)
    return rapl_meter(root)


def per_image(joules: float, images: int) -> float:
    if images <= 0:
        raise ValueError("energy per image of no images")
    return joules / images
