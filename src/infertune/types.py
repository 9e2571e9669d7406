"""The core data types. Plain frozen dataclasses; no ML framework is imported here."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

# Formats a ModelHandle can be in. "torch" holds an nn.Module (eager, TorchScript or
# imported Darknet); "onnx" holds a path to an .onnx file; "openvino" a path to an OpenVINO
# IR .xml (its .bin beside it): what NNCF's quantizer produces, runnable by OpenVINO only.
MODEL_FORMATS = ("torch", "onnx", "openvino")


@dataclass(frozen=True)
class InputSpec:
    """One image input: `shape` is (batch, channels, height, width), batch symbolic."""

    name: str = "input"
    shape: tuple[int | str, ...] = ("batch", 3, 224, 224)
    dtype: str = "float32"
    layout: str = "NCHW"

    @property
    def chw(self) -> tuple[int, int, int]:
        c, h, w = self.shape[1:4]
        return int(c), int(h), int(w)

    def with_hw(self, height: int, width: int) -> "InputSpec":
        return replace(self, shape=(self.shape[0], self.shape[1], int(height), int(width)))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout}


@dataclass(frozen=True)
class ModelHandle:
    """What a model *is*; it never runs itself.

    Attributes:
        format: one of MODEL_FORMATS.
        obj: the in-memory model (an eval-mode torch.nn.Module for "torch"), or None.
        path: the file it came from or lives in (always set for "onnx").
        input_spec: the image input it expects.
        name: a short display name ("darknet19_448", "net.cfg").
        source: how it was obtained, as the user would write it again.
        meta: facts loaders know (family, num_classes, preprocess preset, darknet bn_eps...).
    """

    format: str
    input_spec: InputSpec
    name: str
    source: str
    obj: Any = field(default=None, repr=False, compare=False)
    path: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.format not in MODEL_FORMATS:
            raise ValueError(f"unknown model format {self.format!r}")
        if self.format in ("onnx", "openvino") and not self.path:
            raise ValueError(f"an {self.format} ModelHandle needs a path")
        if self.format == "torch" and self.obj is None:
            raise ValueError("a torch ModelHandle needs the module in obj")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "source": self.source,
            "path": self.path,
            "input": self.input_spec.to_dict(),
            "meta": dict(self.meta),
        }
