"""The per-layer rows of a static profile and how they add up (shared by the torch and ONNX
counters; the meaning of each number is in the package docstring)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

TOTAL_KEYS = ("params", "buffers", "macs", "weight_bytes", "activation_bytes", "mac_bytes")
OTHER_ROW = "(other)"


@dataclass
class LayerStats:
    """One row of the per-layer table, filled in while the model runs or the graph is read."""

    name: str
    type: str
    output_shape: Any = None
    params: int = 0
    buffers: int = 0
    macs: int = 0
    weight_bytes: int = 0
    activation_bytes: int = 0
    mac_bytes: int = 0
    calls: int = 0

    def is_empty(self) -> bool:
        return not any(getattr(self, key) for key in TOTAL_KEYS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "output_shape": self.output_shape,
            **{key: int(getattr(self, key)) for key in TOTAL_KEYS},
            "intensity": intensity(self.macs, self.mac_bytes), "calls": self.calls,
        }


def intensity(macs: int, mac_bytes: int) -> float:
    """MACs per byte moved; 0.0 for a layer that moves nothing."""
    return round(macs / mac_bytes, 4) if mac_bytes else 0.0


def strip_batch(shape: Sequence[Any]) -> list[Any]:
    """A shape without its batch dimension: the leading 1 of a tensor computed at batch 1."""
    shape = list(shape)
    return shape[1:] if shape and shape[0] == 1 else shape


def assemble(name: str, input_chw: Sequence[int], output_shape: Any,
             layers: list[LayerStats]) -> dict[str, Any]:
    """The JSON-ready profile: totals (sums over layers) first, then the rows."""
    totals = {key: int(sum(getattr(row, key) for row in layers)) for key in TOTAL_KEYS}
    return {
        "model": name,
        "input_shape": [int(v) for v in input_chw],
        **totals,
        "intensity": intensity(totals["macs"], totals["mac_bytes"]),
        "output_shape": output_shape,
        "layers": [row.to_dict() for row in layers],
    }
