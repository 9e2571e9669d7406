"""Shared fixtures. tests/ mirrors src/infertune/ (tests/load/darknet/ tests load/darknet/, ...);
the kind of test is a marker registered in pyproject.toml (e2e, fuzz, slow, tf, gpu). This folder
is on sys.path (pytest's rootdir conftest), so the helpers beside this file are imported by
name: tiny_models, extras, fuzz_targets."""
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
