"""Model export. ONNX for now: `export_onnx(handle, out, opset=17, input_size=None, check=True)`
writes a checked ONNX file atomically and returns a small summary (see export/onnx.py).
torch, onnx and onnxruntime are imported only when an export runs."""
from __future__ import annotations

from typing import Any

from .onnx import export_onnx as _export_onnx


def export_onnx(handle, out, *, opset: int = 17, input_size: tuple[int, int] | None = None,
                check: bool = True) -> dict[str, Any]:
    """Exports `handle` to ONNX at `out`; see `infertune.export.onnx.export_onnx`."""
    return _export_onnx(handle, out, opset=opset, input_size=input_size, check=check)


__all__ = ["export_onnx"]
