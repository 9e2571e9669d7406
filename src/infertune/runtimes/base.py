"""What every runtime provides, the registry that lists them, and helpers they share.

A runtime is one module (`runtimes/<name>.py`) that holds everything about it:
- a `Runtime` subclass registered in `RUNTIMES` (parent side): `available()` says, without
  importing the framework, whether it can run here and why not; `build()` turns a ModelHandle
  into an artifact on disk; `options(batch)` are the opener options for a measurement; and
  the facts the rest of infertune reads from the registry instead of keeping its own tables:
  what the artifact is (`infertune list`), how `best/run.py` loads it (`loader`), the
  Triton backend that serves it (`triton`), the planning prior (`prior_speedups`), its
  `family`, whether it `needs_gpu`, its `rank` in `--runtime all` and in planning, and how
  its layers are timed (`time_layers`, see runtimes/layer_time.py).
- an *opener* in `OPENERS` (child side), registered by the same
  module (`opener` below), with the modules to import in the child's import phase so that
  their import time is not charged to the cold start. The measuring child finds it by
  importing `Runtime.opener_module`: the module that defines the Runtime class.

Frameworks are imported only inside functions: `import infertune.runtimes` must stay cheap,
and a runtime whose library is missing must still be listable with its reason.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Mapping,
    Protocol,
    Sequence,
    runtime_checkable,
)

from ..errors import InfertuneError
from ..export import export_onnx
from ..machine import gpu_info
from ..registry import Registry
from ..types import ModelHandle

if TYPE_CHECKING:  # numpy only for the annotations; never imported here at run time
    import numpy as np


@runtime_checkable
class Session(Protocol):
    """An opened, ready-to-run artifact.

    Contract: `run(x)` returns only once the outputs are complete and readable on the host
    (a GPU runtime synchronises inside `run`), so that the time around the call is the time of
    the inference. `close()` releases everything `open` acquired. A session may also offer
    `describe() -> dict` (JSON-ready facts such as the providers or the precision that really
    ran); the harness copies it into the result as `session_info`.
    """

    def run(self, x: "np.ndarray") -> Any:
        """Runs one batch `x` (N, C, H, W) and returns the outputs."""

    def close(self) -> None:
        """Releases the session."""


# open(artifact_path, options) -> Session. `options` always carries "threads" (int).
Opener = Callable[[str, Mapping[str, Any]], Session]

OPENERS: Registry[Opener] = Registry("runtime")


class ArtifactError(InfertuneError):
    """A runtime could not build, save or reload its artifact (a failed result, not a crash)."""


class Incompatible(ArtifactError):
    """The runtime cannot take this kind of model at all (e.g. torch.compile on TorchScript)."""


@dataclass(frozen=True)
class Tolerance:
    """How far a runtime's outputs may be from the reference's, and why.

    Attributes:
        rel: the largest accepted max |diff|, as a fraction of max |reference|; the
            cosine must also be at least 1 − rel (measure/parity.py).
        why: the reason for this bound (what differs between the runtime and the reference).
    """

    rel: float
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"rel": self.rel, "why": self.why}


# FP32 runtimes that reorder float operations (other convolution algorithms, fused and
# blocked kernels, different summation order) differ from PyTorch by rounding that grows with
# depth: ~1e-6..1e-5 relative on a ResNet-50. 1e-3 of the output's magnitude leaves a
# 100x margin and still catches a wrong op, a wrong layout or a silent low-precision path
# (BF16 rounds at ~4e-3 relative per op).
FP32_REORDERED = Tolerance(1e-3, "FP32 with other kernels and summation order than PyTorch "
                                 "eager: rounding differences only (~1e-5 relative); a wrong "
                                 "op or a silent BF16/FP16 path is 10x or more beyond it")


# A bf16/fp16 candidate against the float32 reference (fp16/bf16 passes): the rounding of the
# format dominates any runtime's FP32 reordering. bfloat16 keeps 8 significant bits (~2e-3
# relative per rounding), float16 11 (~2.4e-4); on the tiny test models the outputs measured
# 2-4e-3 (bf16) and ~4e-4 (fp16) of max |output|, cosine >= 1 - 5e-6. 3e-2 and 5e-3 leave
# ~10x for deeper models and still fail a wrong op or a NaN from an overflowed pad (>= 1e-1).
LOW_PRECISION = {
    "bf16": Tolerance(3e-2, "bfloat16 arithmetic (8 significant bits, ~2e-3 relative per "
                            "rounding) against the float32 reference"),
    "fp16": Tolerance(5e-3, "float16 arithmetic (11 significant bits, ~2.4e-4 relative per "
                            "rounding) against the float32 reference"),
}


@dataclass(frozen=True)
class Loader:
    """How the `run.py` next to an exported pick (search/best.py) loads the artifact.

    Attributes:
        needs: what the script needs installed, as its docstring says it ("torch").
        code: lines that define `predict(x) -> outputs` from `MODEL` (the artifact's path);
            "{CONFIG}" is replaced by the literal of `Runtime.deploy_config(options)`: the
            settings the pick was measured with.
    """

    needs: str
    code: str


@dataclass(frozen=True)
class TritonSettings:
    """A runtime configuration as Triton's backend takes it (`Runtime.triton_settings`).

    Attributes:
        parameters: config.pbtxt `parameters` entries (key -> string value).
        blocks: other config.pbtxt lines, verbatim (ONNX Runtime's optimization level).
        not_set: the settings ("KEY=value") the backend cannot take: the Triton model
            runs without them, and the export says so.
    """

    parameters: Mapping[str, str] = field(default_factory=dict)
    blocks: tuple[str, ...] = ()
    not_set: tuple[str, ...] = ()


@dataclass(frozen=True)
class TritonBackend:
    """How Triton Inference Server serves the artifact (`infertune triton`).

    Attributes:
        key: the config.pbtxt field that names it: "platform" or "backend".
        value: that field's value ("onnxruntime_onnx").
        filename: the name Triton expects in the model's version folder ("model.onnx").
    """

    key: str
    value: str
    filename: str


class Runtime:
    """Base of every runtime (subclasses set the class attributes and `build`).

    Attributes:
        name: registry key and opener name ("onnxruntime").
        accepts: ModelHandle formats it can build from.
        requires: importable modules it needs (checked with find_spec: nothing imported).
        install: what to install when they are missing.
        tolerance: parity tolerance against the float reference, with its reason.
        description: one line for listings.
        artifact_files: what its build writes, as file suffixes (`infertune list`).
        artifact_note: what that artifact is, in a few words (`infertune list`).
        loader: how best/run.py loads the artifact (None: the script falls back to ONNX
            Runtime's loader, see search/best.py).
        triton: the Triton backend that serves the artifact (None: `infertune triton`
            refuses a pick on this runtime).
        prior_speedups: precision -> expected speed-up over eager FP32 (1.0 where absent).
            Only the *order* in which candidates are tried comes from these; every
            decision is taken on measured numbers. The figures come from the measurements
            on this class of machine (SPEC: Darknet19_448, 2-core Zen 4).
        family: runtimes that run the same kind of graph ("torch": eager, TorchScript and
            torch.compile, where PyTorch's memory formats apply); "" for one of its own.
        needs_gpu: it runs only on a GPU, not a CPU runtime (its `available()` checks
            for the GPU).
        rank: position in `--runtime all` and in the fused stage's plan, lowest first (the
            eager baseline first: every bench speed-up is relative to the first row); equal
            ranks keep the order of registration.
        times_layers: `time_layers` measures per-layer times of its artifact.
    """

    name: str = ""
    accepts: tuple[str, ...] = ("torch",)
    requires: tuple[str, ...] = ()
    install: str = ""
    tolerance: Tolerance = FP32_REORDERED
    description: str = ""
    # A torch module the fp16/bf16 passes cast to float16/bfloat16 (meta "torch_precision"):
    # the torch runtimes run it as it is and OpenVINO compiles its float32 copy with the
    # matching precision hint; the ones that start from an ONNX export refuse it, because
    # that export would be a bfloat16/float16-typed graph (ORT has no bfloat16 CPU kernels).
    takes_cast_torch: bool = False
    cast_torch_hint: str = "plan the pass with target=openvino, or run it on torch or compile"
    artifact_files: str = "?"
    artifact_note: str = ""
    loader: Loader | None = None
    triton: TritonBackend | None = None
    prior_speedups: Mapping[str, float] = MappingProxyType({})
    family: str = ""
    needs_gpu: bool = False
    rank: int = 100
    times_layers: bool = False

    @property
    def opener_module(self) -> str:
        """The module the measuring child imports to find this runtime's opener: the one
        that defines the class (each runtime module registers its opener next to it)."""
        return type(self).__module__

    def prior_speedup(self, precision: str) -> float:
        """Expected speed-up over eager FP32 at `precision` (planning order only)."""
        return float(self.prior_speedups.get(precision, 1.0))

    def available(self) -> tuple[bool, str | None]:
        """(True, None), or (False, why not) without importing the framework."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            hint = f" ({self.install})" if self.install else ""
            return False, f"{', '.join(missing)} not installed{hint}"
        return self.hardware_available()

    def hardware_available(self) -> tuple[bool, str | None]:
        """Whether the hardware it needs is here (a GPU runtime overrides this)."""
        return True, None

    def incompatible(self, handle: ModelHandle) -> str | None:
        """Why this runtime cannot take `handle`, or None."""
        if handle.format not in self.accepts:
            return (f"{self.name} runs {' or '.join(self.accepts)} models; this model is "
                    f"{handle.format}")
        cast = handle.meta.get("torch_precision")
        if cast and handle.format == "torch" and not self.takes_cast_torch:
            return (f"this model is a torch module cast to {cast} (the {cast} pass with target "
                    f"torch), which {self.name} cannot run; {self.cast_torch_hint}")
        only = handle.meta.get("runtime_only")  # set by passes that emit runtime-specific ops
        if only and only != self.name:
            return f"this model only runs on {only} (a pass wrote {only}-specific ops)"
        return None

    def build(self, handle: ModelHandle, workdir: str | Path, *,
              input_size: tuple[int, int] | None = None, threads: int | None = None) -> Path:
        """Writes the artifact for `handle` under `workdir` and returns its path.

        Raises:
            ArtifactError: it cannot be built or does not load back (Incompatible: never can).
            UnsupportedModel: the ONNX export it needs failed.
        """
        raise NotImplementedError

    def options(self, batch: int | None) -> dict[str, Any]:
        """Opener options for a measurement at `batch` (None: several batch sizes)."""
        return {}

    def configurations(self, objective: str, threads: int,
                       max_threads: int) -> list[dict[str, Any]]:
        """Runtime configurations worth timing against the default one (search/space.
        configured): each a dict of opener options merged over `options(batch)` ("threads"
        is the measurement's thread count) that changes how the work is scheduled, never
        what is computed. `objective` is the run's ("latency": batch 1, "throughput"),
        `threads` the run's thread count, `max_threads` the most the run may use (the
        logical CPUs when the thread count was not fixed by the user). [] = none."""
        return []

    def deploy_config(self, options: Mapping[str, Any],
                      artifact: str | None = None) -> dict[str, Any]:
        """The settings (JSON) best/run.py opens the artifact with under `options`: the
        loader's "{CONFIG}"."""
        return {}

    def triton_settings(self, options: Mapping[str, Any]) -> TritonSettings:
        """`options` as Triton's backend for this runtime takes them (`infertune triton`)."""
        return TritonSettings()

    def time_layers(self, artifact: str, x: Any, threads: int | None,
                    runs: int) -> tuple[list[dict[str, Any]], str]:
        """(rows, how they were measured) for `runs` timed runs of `artifact` on input `x`,
        after layer_time.WARMUP_RUNS warm-up runs; rows as layer_time.rows_from_totals.
        Only called when `times_layers` is set (runtimes/layer_time.py checks)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        ok, reason = self.available()
        return {"name": self.name, "accepts": list(self.accepts), "available": ok,
                "reason": reason, "tolerance": self.tolerance.to_dict(),
                "description": self.description}


class RuntimeRegistry(Registry[Runtime]):
    """RUNTIMES, with the views other packages used to keep as tables of their own."""

    def ordered(self) -> list[str]:
        """Every registered name by `rank` (stable: equal ranks in registration order)."""
        return sorted(self.names(), key=lambda name: self._items[name].rank)

    def find(self, name: str) -> Runtime | None:
        """The runtime named `name`, or None (for names that may be a test's fake)."""
        return self._items.get(name)

    def prior_speedup(self, name: str, precision: str) -> float:
        runtime = self.find(name)
        return runtime.prior_speedup(precision) if runtime is not None else 1.0

    def triton_backends(self) -> dict[str, TritonBackend]:
        """name -> Triton backend, for the runtimes Triton serves (registration order)."""
        return {name: rt.triton for name, rt in self.items() if rt.triton is not None}

    def layer_timed(self) -> list[str]:
        """The runtimes that can time the layers of their artifact, by rank."""
        return [name for name in self.ordered() if self._items[name].times_layers]


RUNTIMES = RuntimeRegistry("runtime")


def register(runtime: Runtime) -> Runtime:
    """Adds a runtime object to RUNTIMES under its name."""
    RUNTIMES.add(runtime.name, runtime)
    return runtime


def opener(name: str, *, preload: Sequence[str] = ()) -> Callable[[Opener], Opener]:
    """Registers an opener in OPENERS; `preload` = modules the child imports before opening."""

    def decorator(fn: Opener) -> Opener:
        fn.preload = tuple(preload)  # type: ignore[attr-defined]
        OPENERS.add(name, fn)
        return fn

    return decorator


def workdir_for(workdir: str | Path, name: str) -> Path:
    path = Path(workdir) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def onnx_artifact(handle: ModelHandle, workdir: str | Path,
                  input_size: tuple[int, int] | None = None) -> Path:
    """The model as ONNX under `workdir`, exported (and checked against it) once and shared
    by the runtimes that start from ONNX (ONNX Runtime, OpenVINO, TensorRT)."""
    if handle.format == "torch" and handle.meta.get("torch_precision"):
        raise Incompatible(f"a torch module cast to {handle.meta['torch_precision']} is not "
                           "exported to ONNX (a bfloat16/float16-typed graph; see "
                           "Runtime.takes_cast_torch)")
    path = workdir_for(workdir, "onnx") / "model.onnx"
    if not path.exists():
        export_onnx(handle, path, input_size=input_size)
    return path


def cxx_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend would use, or None."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


@functools.lru_cache(maxsize=1)
def nvidia_gpus() -> tuple[str, ...]:
    """Names of the NVIDIA GPUs nvidia-smi lists (empty without one or without nvidia-smi)."""
    return tuple(g.get("name", "?") for g in (gpu_info() or []))


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def set_torch_threads(threads: int | None) -> None:
    """Intra-op threads of this process's torch (the measured thread count)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
