"""The Pareto front over several objectives, each with its direction. Pure."""
from __future__ import annotations

from typing import Sequence

DIRECTIONS = ("min", "max")


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """a is at least as good as b on every objective and strictly better on one."""
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "max":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates, in input order.

    Equal points do not dominate each other, so ties are all kept (a reader sees every
    candidate that is equally good). Raises ValueError for a bad direction or ragged points.
    """
    if any(d not in DIRECTIONS for d in directions):
        raise ValueError(f"directions must be 'min' or 'max', got {list(directions)}")
    if any(len(p) != len(directions) for p in points):
        raise ValueError("every point needs one value per direction")
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i)]
