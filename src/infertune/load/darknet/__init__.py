"""Darknet importer: `.cfg` + `.weights` → a PyTorch `DarknetNet` (see FORMAT.md).

Public API:
    network_from_text(text, name=, input_size=, bn_eps=) -> DarknetNet (random init)
    load_darknet(cfg_path, weights_path=None, ...) -> ModelHandle
    read_weights / write_weights / count_weight_floats / parse_cfg / read_cfg / DarknetNet

Batch-norm epsilon (`bn_eps`, FORMAT.md §3.2): "cpu" (default) reproduces a CPU build of
pjreddie Darknet, x̂ = (x − mean) / (sqrt(var) + 1e-6); "gpu" reproduces its GPU build and
AlexeyAB's, x̂ = (x − mean) / sqrt(var + 1e-5) (= nn.BatchNorm2d(eps=1e-5)).

Only `parse_cfg`/`read_cfg` are torch-free; the rest imports torch on first use.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError, ModelFileError
from ...tasks.detection.heads import detection_spec
from ...types import InputSpec, ModelHandle
from .cfg import Section, parse_cfg, read_cfg

if TYPE_CHECKING:  # pragma: no cover
    from .build import DarknetNet
    from .weights import WeightsHeader

BN_EPS_MODES = ("cpu", "gpu")


def _check_bn_eps(bn_eps: str) -> None:
    if bn_eps not in BN_EPS_MODES:
        raise ConfigError(f"bn_eps must be 'cpu' or 'gpu', not {bn_eps!r}")


def network_from_text(text: str, *, name: str = "<cfg>", input_size: tuple[int, int] | None = None,
                      bn_eps: str = "cpu") -> "DarknetNet":
    """Builds an eval-mode DarknetNet from cfg text with default torch initialisation.

    Args:
        text: the cfg. name: used in error messages and as `net.name`.
        input_size: (height, width) instead of the [net] width/height.
        bn_eps: "cpu" or "gpu" batch-norm epsilon convention (module docstring).

    The caller seeds the RNG (load_darknet does, without touching the global state).
    """
    from .build import build_network

    _check_bn_eps(bn_eps)
    return build_network(parse_cfg(text, name), name=name, input_size=input_size, bn_eps=bn_eps)


def count_weight_floats(sections: list[Section] | str | Path,
                        input_size: tuple[int, int] | None = None) -> int:
    """Float32 values in a .weights file for these sections (or this cfg path); no tensors."""
    from .build import count_weight_floats as _count

    if isinstance(sections, (str, Path)):
        sections = read_cfg(sections)
    return _count(sections, input_size)


def read_weights(net: "DarknetNet", path: str | Path, *, allow_partial: bool = False) -> "WeightsHeader":
    """Fills `net` from a .weights file (see weights.read_weights)."""
    from .weights import read_weights as _read

    return _read(net, path, allow_partial=allow_partial)


def write_weights(net: "DarknetNet", path: str | Path, *, seen: int = 0) -> int:
    """Writes `net` as a .weights file, atomically (see weights.write_weights)."""
    from .weights import write_weights as _write

    return _write(net, path, seen=seen)


def _num_classes(net: "DarknetNet") -> int | None:
    if net.output_index in net.head_indices:
        return None  # a detector's raw head, not class scores
    shape = net.output_shape
    if isinstance(shape, int):
        return shape
    return shape[0] if shape[1:] == (1, 1) else None


def detection_meta(net: "DarknetNet") -> dict[str, Any]:
    """{"detection": DetectionSpec or None, "outputs": names, "detection_input": why it is
    letterboxed or stretched} for a detector, {} otherwise."""
    if not net.output_heads:
        return {}
    letterbox, why = letterbox_rule(net.net_section, net.sections)
    spec = detection_spec(net.sections, net.out_shapes, net.output_heads, net.input_size[1:],
                          letterbox=letterbox)
    return {"detection": spec, "outputs": list(net.output_names), "detection_input": why}


# What pjreddie's darknet reads in these sections (parser.c: parse_net_options, parse_yolo,
# parse_convolutional, parse_route). A cfg using any other key there, or a layer type only
# AlexeyAB's fork has, was written for that fork.
_PJREDDIE_KEYS = {
    "net": frozenset("""batch learning_rate momentum decay subdivisions time_steps notruth
        random adam B1 B2 eps height width channels inputs max_crop min_crop max_ratio
        min_ratio center clip angle aspect saturation exposure hue policy burn_in power step
        scale steps scales gamma max_batches""".split()),
    "yolo": frozenset("""classes num mask max jitter ignore_thresh truth_thresh random map
        anchors""".split()),
    "convolutional": frozenset("""filters size stride pad padding groups activation
        batch_normalize binary xnor flipped dot""".split()),
    "route": frozenset(["layers"]),
}
_ALEXEYAB_LAYERS = frozenset(["reorg3d", "scale_channels", "sam", "Gaussian_yolo",
                              "conv_lstm", "history", "implicit", "contrastive"])


def letterbox_rule(net_section, layers) -> tuple[bool, str]:
    """Whether a Darknet detector's input is letterboxed (aspect kept, grey padding) or the
    image is resized to the network's size, and why.

    The two darknets disagree: pjreddie's letterboxes every detector input (since 2018);
    AlexeyAB's reads `letter_box` from [net] and resizes without it (its default 0), and so
    do the published YOLOv4 results. So: `letter_box` in [net] decides (non-zero:
    letterbox); without it, a cfg that uses AlexeyAB-only keys or layers is resized, and
    any other cfg is letterboxed. Write `letter_box=0` or `=1` in the cfg's [net] to
    choose."""
    value = net_section.options.get("letter_box")
    if value is not None:
        on = net_section.get_int("letter_box", 0) != 0
        return on, f"letter_box={value.strip()} in [net]: {'letterbox' if on else 'resize'}"
    marks = sorted({f"[{sec.type}] {key}" for sec in [net_section, *layers]
                    if sec.type in _PJREDDIE_KEYS
                    for key in sec.options if key not in _PJREDDIE_KEYS[sec.type]}
                   | {f"[{sec.type}]" for sec in layers if sec.type in _ALEXEYAB_LAYERS})
    if marks:
        shown = ", ".join(marks[:3]) + (" ..." if len(marks) > 3 else "")
        return False, (f"resize (no letterbox): an AlexeyAB cfg ({shown}) without letter_box, "
                       "whose darknet then resizes")
    return True, ("letterbox: a pjreddie-style cfg without letter_box (pjreddie's darknet "
                  "letterboxes)")


def _require_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise ModelFileError(f"is a directory, not a {what}", path=path)
    if not path.is_file():
        raise ModelFileError(f"no such {what}", path=path)


def load_darknet(cfg_path: str | Path, weights_path: str | Path | None = None, *,
                 allow_partial: bool = False, bn_eps: str = "cpu",
                 input_size: tuple[int, int] | None = None, seed: int = 0) -> ModelHandle:
    """Loads a Darknet cfg (and optionally its weights) as a "torch" ModelHandle.

    Without weights the network is randomly initialised from `seed`, leaving the global RNG
    untouched. meta: family, bn_eps, num_classes (flat or C×1×1 classifier output, else None),
    preprocess ("darknet"), weights_header (dict or None), layers_loaded.
    """
    import torch

    from .build import build_network

    _check_bn_eps(bn_eps)
    cfg_path = Path(cfg_path)
    _require_file(cfg_path, "cfg file")
    if weights_path is not None:
        _require_file(Path(weights_path), ".weights file")
    sections = read_cfg(cfg_path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_network(sections, name=cfg_path.name, input_size=input_size, bn_eps=bn_eps)
    header = read_weights(net, weights_path, allow_partial=allow_partial) if weights_path else None
    c, h, w = net.input_size
    meta: dict[str, Any] = {
        "family": "darknet", "bn_eps": bn_eps, "num_classes": _num_classes(net),
        "preprocess": "darknet", "weights_header": asdict(header) if header else None,
        "layers_loaded": header.layers_loaded if header else 0,
        **detection_meta(net),
    }
    source = f"{cfg_path}:{weights_path}" if weights_path else str(cfg_path)
    return ModelHandle(format="torch", obj=net, input_spec=InputSpec(shape=("batch", c, h, w)),
                       name=cfg_path.name, source=source, path=str(cfg_path), meta=meta)


def __getattr__(name: str) -> Any:
    if name == "DarknetNet":  # lazy: importing this package must not import torch
        from .build import DarknetNet

        return DarknetNet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["network_from_text", "load_darknet", "read_weights", "write_weights", "count_weight_floats",
           "parse_cfg", "read_cfg", "DarknetNet", "Section", "BN_EPS_MODES"]
