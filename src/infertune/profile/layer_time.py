"""Moved: per-layer timing measures built artifacts, so it lives next to the runtimes
(`infertune.runtimes.layer_time`, each runtime's method in its own module). This name stays
for the importers not yet switched (api.profile, search/report.py)."""
from __future__ import annotations

from ..runtimes.layer_time import layer_times, profile_layer_time, rows_from_totals
from ..runtimes.onnxruntime import ort_kernel_events

__all__ = ["layer_times", "profile_layer_time", "rows_from_totals", "ort_kernel_events"]
