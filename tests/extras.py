"""`require_extra`: the one way a test depends on an optional extra (nncf, torchao, ray,
playwright ...). Imported by name (tests/ is on sys.path through its conftest.py).

Hard dependencies (pyproject `dependencies`: torch, onnx, onnxruntime, openvino,
onnxconverter-common ...) and infertune's own modules are imported plainly, so that a missing
one fails loudly. An optional extra that is missing is a skip with the reason on a developer's
machine, but a failure where the extras must be there: under CI (the `CI` variable, set by CI
services; `.ci/run` installs `[all,test]`) or with INFERTUNE_REQUIRE_EXTRAS=1. There a skip
would hide a broken install.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def extras_required() -> bool:
    """Whether a missing optional extra must fail the test rather than skip it."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("INFERTUNE_REQUIRE_EXTRAS") == "1"


def require_extra(module: str, extra: str = "all") -> ModuleType:
    """`module` imported; if it is not installed, a skip (or, when `extras_required()`, a
    failure) naming the module and the extra that provides it. Works at module level too."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f"{module} is not installed (extra [{extra}]): {exc}"
        if extras_required():
            pytest.fail(f"{why}; CI or INFERTUNE_REQUIRE_EXTRAS=1 requires the extras",
                        pytrace=False)
        pytest.skip(why, allow_module_level=True)
