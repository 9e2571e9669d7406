"""fingerprint.py: the ISA parser on canned /proc/cpuinfo text, and the fingerprint's shape."""
from __future__ import annotations

import json

import infertune.machine as machine
from infertune.measure.fingerprint import ISA_FLAGS, fingerprint, isa_summary, parse_cpuinfo

ZEN4_2CPU = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni avx_vnni avx512_bf16 hypervisor

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni avx_vnni avx512_bf16 hypervisor
"""

SAPPHIRE_HT = """processor : 0
model name : Intel(R) Xeon(R) Platinum 8480+
physical id : 0
core id : 0
flags : avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16
processor : 1
model name : Intel(R) Xeon(R) Platinum 8480+
physical id : 0
core id : 0
flags : avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16
"""


def test_parse_cpuinfo_zen4():
    info = parse_cpuinfo(ZEN4_2CPU)
    assert info["model"] == "AMD EPYC 9R14 96-Core Processor"
    assert info["logical"] == 2 and info["physical"] == 2 and info["hypervisor"] is True
    isa = isa_summary(info["flags"])
    assert set(isa) == set(ISA_FLAGS)
    assert isa["avx512_vnni"] and isa["avx_vnni"] and isa["avx512_bf16"] and isa["avx2"]
    assert not isa["amx_tile"] and not isa["amx_int8"] and not isa["amx_bf16"]


def test_parse_cpuinfo_hyperthreads_and_amx():
    info = parse_cpuinfo(SAPPHIRE_HT)
    assert info["logical"] == 2 and info["physical"] == 1  # two threads of one core
    isa = isa_summary(info["flags"])
    assert isa["amx_tile"] and isa["amx_int8"] and isa["amx_bf16"] and not info["hypervisor"]


ZEN3_AVX2 = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma vaes vpclmulqdq hypervisor
"""


def test_int8_sums_saturate_only_on_x86_without_vnni_or_amx():
    isa = {name: isa_summary(parse_cpuinfo(text)["flags"])
           for name, text in (("zen3", ZEN3_AVX2), ("zen4", ZEN4_2CPU), ("spr", SAPPHIRE_HT))}
    assert machine.int8_sums_saturate(isa["zen3"], "x86_64") is True
    assert machine.int8_sums_saturate(isa["zen4"], "x86_64") is False    # VNNI
    assert machine.int8_sums_saturate(isa["spr"], "AMD64") is False      # VNNI and AMX
    assert machine.int8_sums_saturate({"amx_int8": True}, "x86_64") is False
    assert machine.int8_sums_saturate({}, "aarch64") is False            # not x86: no vpmaddubsw


def test_int8_weight_warning_only_for_8_bit_weights_where_sums_saturate():
    zen3 = isa_summary(parse_cpuinfo(ZEN3_AVX2)["flags"])
    spr = isa_summary(parse_cpuinfo(SAPPHIRE_HT)["flags"])
    warning = machine.int8_weight_warning(8, zen3, "x86_64")
    assert warning and "saturating 16-bit sums" in warning and "avx512_vnni" in warning
    assert machine.int8_weight_warning(7, zen3, "x86_64") is None      # ORT's reduce_range
    assert machine.int8_weight_warning(8, spr, "x86_64") is None       # 32-bit dot products
    assert machine.int8_weight_warning(8, {}, "aarch64") is None


def test_parse_cpuinfo_tolerates_empty_and_foreign_text():
    assert parse_cpuinfo("") == {"model": None, "flags": [], "logical": 0, "physical": None,
                                 "hypervisor": False}
    assert parse_cpuinfo("Processor\t: ARMv8\nFeatures\t: fp asimd\n")["model"] is None


def test_fingerprint_keys_and_types():
    fp = fingerprint()
    json.dumps(fp)  # JSON-ready
    cpu = fp["cpu"]
    assert cpu["model"] is None or isinstance(cpu["model"], str)
    assert isinstance(cpu["physical_cores"], int) and isinstance(cpu["logical_cores"], int)
    assert cpu["logical_cores"] >= cpu["physical_cores"] >= 1
    assert set(cpu["isa"]) == set(ISA_FLAGS)
    assert all(isinstance(v, bool) for v in cpu["isa"].values())
    assert isinstance(fp["memory_total_mb"], float) and fp["memory_total_mb"] > 0
    assert {"system", "release", "platform"} <= set(fp["os"])
    assert isinstance(fp["python"]["version"], str)
    assert fp["gpu"] is None or isinstance(fp["gpu"], list)
    libs = fp["libraries"]
    assert {"torch", "onnxruntime", "openvino", "onnx", "numpy"} <= set(libs)
    assert all(v is None or isinstance(v, str) for v in libs.values())
    assert isinstance(libs["numpy"], str)  # installed here
    assert "OMP_NUM_THREADS" in fp["threads"]["env"]


def test_fingerprint_is_a_fresh_copy(monkeypatch):
    first = fingerprint()
    first["cpu"]["model"] = "scribbled"
    assert fingerprint()["cpu"]["model"] != "scribbled"
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert fingerprint()["threads"]["env"]["OMP_NUM_THREADS"] == "7"


def test_gpu_info_is_none_without_nvidia_smi(monkeypatch):
    monkeypatch.setattr(machine.shutil, "which", lambda _: None)
    assert machine.gpu_info() is None
