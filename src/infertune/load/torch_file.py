"""TorchScript archives and weights-only PyTorch checkpoints -> ModelHandle.

Checkpoints are read with `torch.load(weights_only=True)`: a pickle that needs arbitrary code
(a whole pickled nn.Module, custom classes) is refused, never executed.
"""
from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import ConfigError, ModelFileError
from ..types import InputSpec, ModelHandle

if TYPE_CHECKING:
    from . import LoadOptions

# Written by infertune's TorchScript export into the archive, so the input shape survives.
EXTRA_FILE = "infertune.json"
_STATE_KEYS = ("state_dict", "model_state_dict", "model")


def is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def load_torch_file(path: Path, opts: "LoadOptions",
                    load_arch: Callable[..., ModelHandle]) -> ModelHandle:
    """A TorchScript file, or a weights-only checkpoint loaded into the model `load_arch`
    (the package's `load_model`, passed in: it dispatches to this module) builds."""
    if is_torchscript(path):
        return _load_torchscript(path, opts)
    return _load_checkpoint(path, opts, load_arch)


def _load_torchscript(path: Path, opts: "LoadOptions") -> ModelHandle:
    import torch

    extra = {EXTRA_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ModelFileError(f"not a loadable TorchScript file ({_first_line(exc)})", path=path) from None
    info = json.loads(extra[EXTRA_FILE]) if extra[EXTRA_FILE] else {}
    shape = info.get("input_shape")  # [C, H, W]
    if opts.input_size is not None:
        shape = [shape[0] if shape else 3, *opts.input_size]
    if shape is None:
        raise ConfigError(f"{path}: a TorchScript file does not record its input size; "
                          "pass --input-size HxW")
    return ModelHandle(format="torch", obj=module.eval(), name=path.name, source=str(path),
                       path=str(path.resolve()),
                       input_spec=InputSpec(shape=("batch", *map(int, shape))),
                       meta={"family": "torchscript", **{k: v for k, v in info.items()
                                                          if k != "input_shape"}})


def read_checkpoint(path: Path) -> Any:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            "refusing to load: the file is not a weights-only checkpoint (it would run arbitrary "
            f"code when unpickled: {_first_line(exc)}); save a state_dict instead", path=path) from None
    except Exception as exc:
        raise ModelFileError(f"not a readable PyTorch file ({_first_line(exc)})", path=path) from None


def _load_checkpoint(path: Path, opts: "LoadOptions",
                     load_arch: Callable[..., ModelHandle]) -> ModelHandle:
    ckpt = read_checkpoint(path)
    state, info = split_checkpoint(ckpt, path)
    arch = opts.arch or info.get("arch")
    if not arch:
        raise ConfigError(f"{path}: a state-dict checkpoint needs its architecture; "
                          "pass --arch ZOO_NAME (or NET.cfg)")
    num_classes = opts.num_classes or info.get("num_classes") or infer_num_classes(state)
    input_size = opts.input_size or (tuple(info["input_size"]) if "input_size" in info else None)
    base = load_arch(arch, **{**asdict(opts), "arch": None, "num_classes": num_classes,
                               "input_size": input_size})
    _load_state(base.obj, state, path)
    meta = {**base.meta, "weights": str(path), "arch": arch}
    return ModelHandle(format="torch", obj=base.obj, input_spec=base.input_spec, name=path.name,
                       source=str(path), path=str(path.resolve()), meta=meta)


def split_checkpoint(ckpt: Any, path: Path) -> tuple[Mapping[str, Any], dict]:
    """A checkpoint is a state dict, or a dict holding one plus `arch`, `num_classes`..."""
    import torch

    if isinstance(ckpt, Mapping):
        for key in _STATE_KEYS:
            if isinstance(ckpt.get(key), Mapping):
                info = {k: v for k, v in ckpt.items() if k not in _STATE_KEYS}
                return ckpt[key], info
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            return ckpt, {}
    raise ModelFileError("holds no state dict (expected a mapping of tensor names to tensors)",
                         path=path)


def infer_num_classes(state: Mapping[str, Any]) -> int | None:
    """The head is registered last in every zoo model: its weight's first dimension."""
    weights = [v for k, v in state.items() if k.endswith("weight") and getattr(v, "ndim", 0) >= 2]
    return int(weights[-1].shape[0]) if weights else None


def _load_state(module, state: Mapping[str, Any], path: Path) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ModelFileError(
            f"state dict does not fit the architecture: {len(missing)} missing "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})", path=path)
    for key, value in state.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise ModelFileError(f"tensor {key!r} has shape {tuple(value.shape)}, the architecture "
                                 f"expects {tuple(own[key].shape)}", path=path)
    module.load_state_dict(state, strict=True)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
