"""`infertune list passes|runtimes|formats`: what is registered and what can run here.

Nothing here imports an ML framework: pass modules import theirs only when a pass runs, and
runtimes answer `available()` with `importlib.util.find_spec`, so a missing framework is
listed with its reason instead of failing the listing.
"""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..passes import PASSES
from ..runtimes import RUNTIMES

KINDS = ("passes", "runtimes", "formats")

# What a MODEL argument can be (see load/__init__.py).
SOURCES = (
    {"name": "darknet", "kind": "source", "files": "NET.cfg[:NET.weights]",
     "note": "Darknet cfg (+ weights); --bn-eps cpu|gpu picks the batch-norm epsilon"},
    {"name": "onnx", "kind": "source", "files": ".onnx", "note": "with external data if any"},
    {"name": "torch", "kind": "source", "files": ".pt .pth .ts .jit .torchscript .ckpt",
     "note": "TorchScript, or a weights-only checkpoint with --arch"},
    {"name": "code", "kind": "source", "files": "package.module:factory",
     "note": "imports and runs user code: only with --trust-code"},
    {"name": "zoo", "kind": "source", "files": "a zoo name", "note": "see `infertune zoo`"},
)


def list_items(kind: str) -> list[dict[str, Any]]:
    """The rows of `infertune list KIND`.

    Raises:
        ConfigError: a kind other than passes, runtimes, formats.
    """
    if kind not in KINDS:
        raise ConfigError(f"cannot list {kind!r}; choose one of {', '.join(KINDS)}")
    return {"passes": list_passes, "runtimes": list_runtimes, "formats": list_formats}[kind]()


def list_passes() -> list[dict[str, Any]]:
    return [{"name": name, "description": spec.description, "accepts": list(spec.accepts),
             "needs_data": spec.needs_data, "options": spec.options()}
            for name, spec in PASSES.items()]


def list_runtimes() -> list[dict[str, Any]]:
    return [{**runtime.describe(), "artifact": runtime.artifact_files,
             "artifact_note": runtime.artifact_note} for _, runtime in RUNTIMES.items()]


def list_formats() -> list[dict[str, Any]]:
    """The MODEL sources, then what each runtime's build writes (`infertune apply --runtime R
    --out FILE`), in RUNTIMES.ordered() order."""
    artifacts = [{"name": name, "kind": "artifact", "files": RUNTIMES.get(name).artifact_files,
                  "note": RUNTIMES.get(name).artifact_note} for name in RUNTIMES.ordered()]
    return [dict(s) for s in SOURCES] + artifacts
