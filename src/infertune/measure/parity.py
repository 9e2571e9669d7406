"""Output parity: does a runtime reproduce the reference outputs on the same inputs?

The parent writes seeded inputs and the reference model's outputs to an `.npz`
(`write_reference`); the measuring child runs the opened artifact on the same inputs and
compares (`check`). Checking in the child means the very file that is timed, reloaded in a
fresh process, is the one checked: an artifact that does not load back, or that computes
something else, becomes a failed result with the numbers, never a crash of the parent.

The criterion is max |output − reference| <= rel × max |reference| (rounding differences
scale with the output: a softmax's probabilities of ~1e-3 must not be compared with an
absolute 1e-3, which would let a 100% error pass; a floor of 1e-6 keeps an all-zero
output checkable) *and* cosine >= 1 − rel over the flattened outputs (a sign flip or a
permutation shows there even where magnitudes are small). numpy only; no ML framework.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np


_FLOOR = 1e-6  # the magnitude below which outputs count as zero for the tolerance


class ParityError(Exception):
    """A runtime's outputs are not the reference's within tolerance (message has numbers)."""


def as_arrays(outputs: Any) -> list[np.ndarray]:
    """The outputs of a session's run() as a list of float64 numpy copies.

    Copies, because some runtimes (OpenVINO with shared outputs) reuse their output buffers
    on the next call.
    """
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.array(o, dtype=np.float64, copy=True) for o in outputs]


def write_reference(path: str | os.PathLike, inputs: Sequence[np.ndarray],
                    references: Sequence[Sequence[np.ndarray]]) -> None:
    """Stores inputs x{i} and reference outputs y{i}_{j} in one .npz (no pickles)."""
    arrays: dict[str, np.ndarray] = {}
    for i, (x, outs) in enumerate(zip(inputs, references)):
        arrays[f"x{i}"] = np.asarray(x)
        for j, y in enumerate(outs):
            arrays[f"y{i}_{j}"] = np.asarray(y)
    np.savez(path, **arrays)


def read_reference(path: str | os.PathLike) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """The (inputs, references) that write_reference stored."""
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        inputs, references = [], []
        i = 0
        while f"x{i}" in keys:
            inputs.append(data[f"x{i}"])
            j, outs = 0, []
            while f"y{i}_{j}" in keys:
                outs.append(data[f"y{i}_{j}"])
                j += 1
            references.append(outs)
            i += 1
    return inputs, references


def _flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])


def _shape_problem(reference: list, got: list) -> str | None:
    if len(reference) != len(got):
        return f"{len(got)} outputs where the reference has {len(reference)}"
    for ref, out in zip(reference, got):
        if np.shape(ref) != np.shape(out):
            return (f"output shape {list(np.shape(out))} where the reference has "
                    f"{list(np.shape(ref))}")
    return None


def check(references: Sequence[list], outputs: Sequence[list], rel: float,
          why: str | None = None) -> dict[str, Any]:
    """Compares outputs with references over all inputs.

    Args:
        references, outputs: per input, the list of output arrays.
        rel: the tolerance as a fraction of max |reference| (floor 1e-6), and 1 − the
            lowest accepted cosine.
        why: the reason for this tolerance, kept with the numbers.

    Returns:
        {"passed","max_abs_diff","cosine","tolerance","rel_tolerance","why","inputs",
         "message"}; NaN or Inf in an output fails (max_abs_diff is then None).
    """
    out = {"passed": False, "max_abs_diff": None, "cosine": None, "tolerance": None,
           "rel_tolerance": rel, "why": why, "inputs": len(references), "message": None}
    for ref, got in zip(references, outputs):
        problem = _shape_problem(list(ref), list(got))
        if problem:
            out["message"] = f"outputs do not match the reference: {problem}"
            return out
    ref, got = _flat([a for r in references for a in r]), _flat([a for o in outputs for a in o])
    if not np.all(np.isfinite(got)):
        out["message"] = "outputs contain NaN or Inf"
        return out
    diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
    norms = float(np.linalg.norm(ref) * np.linalg.norm(got))
    cosine = float(ref @ got / norms) if norms > 0 else 1.0
    tolerance = rel * max(_FLOOR, float(np.max(np.abs(ref))) if ref.size else 1.0)
    out.update(max_abs_diff=diff, cosine=cosine, tolerance=tolerance,
               passed=diff <= tolerance and cosine >= 1.0 - rel)
    if not out["passed"]:
        out["message"] = (f"outputs differ from the reference: max |diff| {diff:.3g} "
                          f"(tolerance {tolerance:.3g}), cosine {cosine:.6f} (at least "
                          f"{1.0 - rel:.6f} needed)")
    return out


def run_check(session, spec: dict[str, Any]) -> dict[str, Any]:
    """Runs `session` on the stored inputs and checks it (the worker's parity phase).

    Returns the check (see `check`); the caller stores it and raises ParityError when it
    did not pass, so that the numbers survive in the failed result.
    """
    inputs, references = read_reference(spec["path"])
    outputs = [as_arrays(session.run(x)) for x in inputs]
    return check(references, outputs, float(spec["rel_tolerance"]), spec.get("why"))
