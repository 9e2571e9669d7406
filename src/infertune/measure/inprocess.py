"""Running a model in this process and getting its outputs: the one runner behind `apply`'s
parity check, `bench`'s parity reference, `eval`, `predict` and the search's accuracy pass.

A `Runner` runs batches: in-process torch (under `inference_mode`, with its own thread count
restored on close), ONNX Runtime on the model's file (the same opener the measuring child
uses, so the reference and the measured session are built alike), or a built artifact opened
through its runtime's session. Timing never happens here: this is for outputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError, RuntimeUnavailable, UnsupportedModel
from ..runtimes import RUNTIMES
from ..tensors import tensors_in
from ..types import ModelHandle
from ..runtimes.session import SessionFactory, get_opener


class Runner:
    """Runs batches of one model: `run(x) -> raw outputs`; `batch` is a fixed batch or None."""

    def __init__(self, name: str, run: Callable, close: Callable[[], None] = lambda: None,
                 batch: int | None = None):
        self.name, self.run, self.close, self.batch = name, run, close, batch


def open_runner(handle: ModelHandle, runtime: str | None, threads: int | None,
                batch_size: int, workdir: str | Path) -> Runner:
    """A Runner for the model: in-process torch/ORT, or the named runtime's session (its
    artifact built in `workdir`)."""
    static = handle.input_spec.shape[0]
    fixed = static if isinstance(static, int) else None  # a model exported at one batch size
    if runtime is not None:
        return runtime_runner(handle, runtime, threads, fixed or batch_size, workdir)
    return inprocess_runner(handle, threads, fixed)


def inprocess_runner(handle: ModelHandle, threads: int | None, fixed: int | None = None
                     ) -> Runner:
    """The model itself: torch in this interpreter, or ONNX Runtime's CPU session."""
    if handle.format == "onnx":
        session = get_opener("onnxruntime")(str(handle.path), {"threads": threads})
        return Runner("onnxruntime (in-process)", session.run, session.close, fixed)
    return torch_runner(handle.obj, threads, fixed)


def torch_runner(module, threads: int | None, fixed: int | None) -> Runner:
    """Runs a torch module under inference_mode with `threads` threads (restored on close)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)

    def run(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x))

    return Runner("torch (in-process)", run, lambda: torch.set_num_threads(before), fixed)


def check_runtime(name: str, handle: ModelHandle,
                  refusal: str = "runtime {name} cannot take the result: {why}"):
    """The registered runtime `name`, refused with the reason when it cannot run `handle`."""
    rt = RUNTIMES.get(name)
    ok, why = rt.available()
    if not ok:
        raise RuntimeUnavailable(f"runtime {name} is not available here: {why}")
    why = rt.incompatible(handle)
    if why:
        raise ConfigError(refusal.format(name=name, why=why))
    return rt


def runtime_runner(handle: ModelHandle, name: str, threads: int | None, batch: int,
                   workdir: str | Path) -> Runner:
    """Builds the runtime's artifact and opens its session here; full batches only."""
    rt = check_runtime(name, handle, refusal="{why}")
    artifact = rt.build(handle, workdir, threads=threads)
    return artifact_runner(name, artifact, threads, batch)


def artifact_runner(name: str, artifact: str | Path, threads: int | None, batch: int,
                    **options: Any) -> Runner:
    """A built artifact opened here with its runtime's session options at `batch`."""
    options = {**RUNTIMES.get(name).options(batch), **options}
    session = SessionFactory(name, str(artifact), options=options).open(threads=threads)
    return Runner(name, session.run, session.close, batch)


def output_arrays(raw: Any) -> list[np.ndarray]:
    """Every output of one forward pass as numpy, in order (torch tensors as float32)."""
    tensors = tensors_in(raw) if _is_torch(raw) else None
    if tensors is not None:
        return [t.float().numpy() for t in tensors]
    items = list(raw.values()) if isinstance(raw, dict) else raw
    return [np.asarray(o) for o in (items if isinstance(items, (list, tuple)) else [items])]


def _is_torch(raw: Any) -> bool:
    while isinstance(raw, (list, tuple, dict)) and raw:
        raw = next(iter(raw.values())) if isinstance(raw, dict) else raw[0]
    return hasattr(raw, "detach")


def reference_outputs(handle: ModelHandle, inputs: Sequence[np.ndarray],
                      threads: int | None = None) -> list[list[np.ndarray]]:
    """The float model's outputs on each input batch (torch in-process, ONNX with ONNX
    Runtime): what a built artifact is checked against."""
    runner = inprocess_runner(handle, threads)
    try:
        return [output_arrays(runner.run(x)) for x in inputs]
    finally:
        runner.close()


def first_output(out: Any, n: int) -> np.ndarray:
    """The first output as float32 N×K numpy (N×K×1×1 flattened); else UnsupportedModel."""
    while isinstance(out, (list, tuple, dict)):
        out = list(out.values())[0] if isinstance(out, dict) else out[0]
    arr = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 4 and arr.shape[2:] == (1, 1):
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise UnsupportedModel(f"eval needs a classifier whose output is N×K scores; this "
                               f"model outputs shape {tuple(arr.shape)} for {n} images")
    return arr


def run_batches(runner: Runner, x: np.ndarray, batch_size: int) -> np.ndarray:
    """N×K float32 outputs over consecutive batches; a fixed-batch runner gets the last
    batch padded with zeros (the padding rows are dropped)."""
    outs = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        n = len(batch)
        if runner.batch and n < runner.batch:
            batch = np.concatenate([batch, np.zeros((runner.batch - n, *batch.shape[1:]),
                                                    dtype=batch.dtype)])
        outs.append(first_output(runner.run(np.ascontiguousarray(batch)), len(batch))[:n])
    return np.concatenate(outs)
