"""limits.py: the probes really run (tiny sizes), the result's structure, the cache, and the
roofline arithmetic on hand-worked numbers. No timing is asserted beyond "> 0"."""
from __future__ import annotations

import json

import pytest

import infertune.measure.limits as limits


@pytest.fixture
def tiny_probes(monkeypatch):
    """The real probes at sizes that take milliseconds (the defaults take ~5 s together)."""
    monkeypatch.setattr(limits, "FP32_N", 96)
    monkeypatch.setattr(limits, "INT8_N", 96)
    monkeypatch.setattr(limits, "MEM_BYTES", 4 * 2**20)


@pytest.fixture
def cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("INFERTUNE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_real_probes_give_positive_figures_and_the_structure(tiny_probes):
    result = limits.measure_limits(1)
    assert set(limits.LIMIT_KEYS) <= set(result)
    for key in limits.LIMIT_KEYS:
        assert isinstance(result[key], float) and result[key] > 0, (key, result["notes"])
    assert result["threads"] == 1
    assert set(result["int8_probes"]) == {"onnxruntime MatMulInteger", "torch._int_mm"}
    assert result["int8_gops"] == max(result["int8_probes"].values())
    assert "torch.mm" in result["method"] and "MatMulInteger" in result["method"]
    json.dumps(result)  # JSON-ready


def test_torch_threads_are_restored():
    import torch

    before = torch.get_num_threads()
    with limits.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_best_rate_runs_at_least_min_runs_after_warmup():
    calls = []
    rate = limits.best_rate(lambda: calls.append(1), 10.0, warmup=2, min_runs=3, max_runs=3)
    assert len(calls) == 5 and rate > 0


def _counting_probes(monkeypatch, values=(100.0, 400.0, 300.0, 20.0)):
    """Replaces the probes by functions that count their calls (the cache logic is tested,
    not the machine)."""
    calls = []
    fp32, ort_int8, torch_int8, mem = values
    for name, value in (("probe_fp32", fp32), ("probe_int8_ort", ort_int8),
                        ("probe_int8_torch", torch_int8), ("probe_memory", mem)):
        monkeypatch.setattr(limits, name, lambda threads, v=value, n=name: calls.append(n) or v)
    return calls


def test_second_call_reads_the_cache(monkeypatch, cache_home):
    calls = _counting_probes(monkeypatch)
    first = limits.machine_limits(2)
    assert not first["cached"] and len(calls) == 4
    second = limits.machine_limits(2)
    assert second["cached"] and len(calls) == 4  # no probe ran again
    assert {k: second[k] for k in limits.LIMIT_KEYS} == {"fp32_gflops": 100.0,
                                                        "int8_gops": 400.0, "mem_gbs": 20.0}
    files = list(cache_home.glob("limits-*.json"))
    assert [str(f) for f in files] == [second["cache_file"]]
    assert not list(cache_home.glob(".*tmp"))  # the atomic write left no temporary file


def test_refresh_and_other_thread_counts_measure_again(monkeypatch, cache_home):
    calls = _counting_probes(monkeypatch)
    limits.machine_limits(2)
    assert not limits.machine_limits(2, refresh=True)["cached"]
    assert not limits.machine_limits(1)["cached"]
    assert len(calls) == 12
    assert len(list(cache_home.glob("limits-*.json"))) == 2  # one file per thread count


def test_a_broken_cache_file_is_measured_again(monkeypatch, cache_home):
    calls = _counting_probes(monkeypatch)
    path = limits.machine_limits(2)["cache_file"]
    with open(path, "w") as fh:
        fh.write("{not json")
    assert not limits.machine_limits(2)["cached"] and len(calls) == 8


def test_a_failing_probe_is_null_with_a_note(monkeypatch, cache_home):
    _counting_probes(monkeypatch)

    def broken(threads):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(limits, "probe_fp32", broken)
    result = limits.machine_limits(2, cache=False)
    assert result["fp32_gflops"] is None
    assert "no such kernel" in result["notes"]["fp32_gflops"]
    assert result["int8_gops"] == 400.0 and result["cache_file"] is None


def test_int8_no_faster_than_fp32_is_flagged(monkeypatch, cache_home):
    _counting_probes(monkeypatch, values=(100.0, 90.0, 80.0, 20.0))
    result = limits.machine_limits(2, cache=False)
    assert "VNNI" in result["notes"]["int8_gops"]


def test_roofline_hand_worked():
    # 1 GMAC moving 100 MB: 2 GFLOP / 0.1 GB = 20 flop/byte; ridge 100 GFLOP/s / 10 GB/s =
    # 10 flop/byte -> compute-bound. Floors: 2e9 / 100e9 s = 20 ms, 2e9 / 400e9 s = 5 ms,
    # 1e8 B / 10e9 B/s = 10 ms.
    lim = {"fp32_gflops": 100.0, "int8_gops": 400.0, "mem_gbs": 10.0}
    out = limits.roofline(10**9, 10**8, lim)
    assert out["flop_per_byte"] == 20.0 and out["ridge_flop_per_byte"] == 10.0
    assert out["bound"] == "compute-bound"
    assert (out["fp32_floor_ms"], out["int8_floor_ms"], out["memory_floor_ms"]) == (20, 5, 10)
    assert limits.roofline(10**9, 10**9, lim)["bound"] == "memory-bound"  # 2 flop/byte < 10
    missing = limits.roofline(10**9, 10**8, {**lim, "mem_gbs": None})
    assert missing["bound"] is None and missing["fp32_floor_ms"] == 20.0


def test_machine_key_depends_on_threads_and_cpu():
    machine = {"hostname": "h", "cpu": {"model": "X"}, "libraries": {}}
    assert limits.machine_key(machine, 1) != limits.machine_key(machine, 2)
    other = {**machine, "cpu": {"model": "Y"}}
    assert limits.machine_key(machine, 1) != limits.machine_key(other, 1)


def test_profile_limits_places_the_model(monkeypatch, cache_home, tmp_path):
    from infertune import api
    from infertune.commands.options import ProfileOptions
    from infertune.cli import main
    from tiny_models import TINY_CFG

    _counting_probes(monkeypatch)
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    result = api.profile(str(cfg), ProfileOptions(limits=True, threads=2))
    lim = result["limits"]
    assert lim["machine"]["fp32_gflops"] == 100.0 and lim["machine"]["threads"] == 2
    # 2 * MACs / 100 GFLOP/s, in ms; intensity from the profile's own MACs and bytes.
    assert lim["fp32_floor_ms"] == pytest.approx(2 * result["macs"] / 100e9 * 1e3, abs=1e-3)
    assert lim["flop_per_byte"] == pytest.approx(2 * result["macs"] / result["mac_bytes"],
                                                 abs=1e-3)
    assert lim["bound"] in ("compute-bound", "memory-bound")
    assert main(["profile", str(cfg), "--limits", "--threads", "2"]) == 0
