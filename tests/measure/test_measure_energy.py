"""energy.py: RAPL over a fake powercap tree (with a counter wraparound), and None with a
reason wherever energy cannot be read."""
from __future__ import annotations

import os

import pytest

from infertune.measure import energy


def _zone(root, name, uj, max_uj=1000):
    d = root / name
    d.mkdir()
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (d / "name").write_text("package\n")
    return d


def test_counter_delta_handles_one_wraparound():
    assert energy.counter_delta(100, 400, 1000) == 300
    assert energy.counter_delta(900, 100, 1000) == 200
    assert energy.counter_delta(5, 5, 1000) == 0


def test_rapl_sums_packages_handles_wrap_and_ignores_subzones(tmp_path):
    p0 = _zone(tmp_path, "intel-rapl:0", 900)
    p1 = _zone(tmp_path, "intel-rapl:1", 100)
    sub = _zone(tmp_path, "intel-rapl:0:0", 0, max_uj=10**9)  # core sub-zone: in p0 already
    meter, reason = energy.open_meter("cpu", root=tmp_path)
    assert reason is None and meter.source == "rapl:intel-rapl:0,intel-rapl:1"
    meter.start()
    (p0 / "energy_uj").write_text("100\n")  # wrapped: 900 -> 1000 -> 100 is 200 uJ
    (p1 / "energy_uj").write_text("400\n")  # 300 uJ
    (sub / "energy_uj").write_text("999999\n")
    assert meter.stop() == pytest.approx(500e-6)
    assert energy.per_image(500e-6, 10) == pytest.approx(50e-6)


def test_absent_powercap_is_none_with_reason(tmp_path):
    meter, reason = energy.open_meter("cpu", root=tmp_path / "nope")
    assert meter is None and "no powercap interface" in reason


def test_powercap_without_package_zone_is_none_with_reason(tmp_path):
    (tmp_path / "dtpm").mkdir()
    meter, reason = energy.rapl_meter(tmp_path)
    assert meter is None and "no RAPL package zone" in reason


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_root_only_counters_are_none_with_reason(tmp_path):
    z = _zone(tmp_path, "intel-rapl:0", 1)
    (z / "energy_uj").chmod(0)
    try:
        meter, reason = energy.rapl_meter(tmp_path)
    finally:
        (z / "energy_uj").chmod(0o644)
    assert meter is None and "root" in reason


def test_gpu_energy_without_pynvml_is_none_with_reason(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pynvml(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    meter, reason = energy.open_meter("cuda:0")
    assert meter is None and "pynvml" in reason
