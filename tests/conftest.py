"""Shared fixtures. Tests are grouped by what they need (unit: no ML framework; load,
darknet, zoo, profile, export: torch + onnx + onnxruntime; e2e: the CLI)."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_CFG = SHARED / "darknet" / "cfg"


@pytest.fixture
def shared_cfg_dir() -> Path:
    """The Darknet cfgs of ../shared (from another project: read in place, never copied)."""
    if not SHARED_CFG.is_dir():
        pytest.skip(f"{SHARED_CFG} not present")
    return SHARED_CFG
