"""Why a pass did not pay: `explain`, and the mixed-precision ledger.

`explain` is a pure function of one candidate and the report. It names only the causes
infertune can detect from what the report records (recipe, precision, runtime, MACs, the
machine's ISA flags and measured limits, latency spread), never a guess dressed as a
measurement.
"""
from __future__ import annotations

from typing import Any

from . import fields as f

# A step that buys less than 5 % is "no gain": single runs swing more than that on shared
# machines, so a smaller difference is not a result anyone should act on.
NO_GAIN_RATIO = 1.05
# Below these the runtime's fixed per-call and per-layer costs are a large share of the time.
SMALL_MACS = 50e6
SMALL_P50_MS = 1.0
INT8_ISA = ("avx512_vnni", "avx_vnni", "amx_int8")
TORCH_RUNTIMES = ("torch", "torchscript", "compile")


def references(cand: dict, report: dict) -> list[tuple[str, dict]]:
    """(what, candidate) to measure `cand` against: its parent, and the fused FP32 of the
    same runtime, where measured and not `cand` itself."""
    ids = f.by_id(report)
    refs = []
    parent = ids.get(cand.get("parent_id"))
    if parent is not None and f.is_measured(parent):
        refs.append(("its parent", parent))
    fused = [o for o in ids.values()
             if o.get("stage") == "fused" and o.get("precision") == "fp32"
             and o.get("runtime") == cand.get("runtime") and f.is_measured(o)]
    # The plainest fused FP32 (shortest recipe) is the reference every later stage builds on.
    fused.sort(key=lambda o: len(f.recipe_passes(o)))
    if fused and fused[0].get("id") not in (cand.get("id"), cand.get("parent_id")):
        refs.append((f"the fused FP32 on {cand.get('runtime')}", fused[0]))
    return refs


def no_gain(cand: dict, report: dict) -> tuple[str, dict, float] | None:
    """(what, reference, reference p50 / candidate p50) for the first reference the
    candidate is not ≥ 5 % faster than; None when it is faster than all (or unmeasured)."""
    if not f.is_measured(cand) or cand.get("stage") == "original":
        return None
    for what, ref in references(cand, report):
        ratio = f.p50_ms(ref) / f.p50_ms(cand)
        if ratio <= NO_GAIN_RATIO:
            return what, ref, ratio
    return None


def explain(cand: dict, report: dict) -> list[str]:
    """Likely reasons why `cand` is not faster than its parent or the fused FP32 of its
    runtime; [] when it is faster (or was not measured)."""
    found = no_gain(cand, report)
    if found is None:
        return []
    _, ref, ratio = found
    passes = f.recipe_passes(cand)
    reasons = (_precision_reasons(cand, report, passes) + _layout_reasons(cand, passes)
               + _compression_reasons(cand, ref, report, passes)
               + _size_reasons(cand, report) + _noise_reasons(cand, ref, ratio))
    return reasons or ["no cause infertune can detect; compare the per-layer times"]


def _precision_reasons(cand: dict, report: dict, passes: list[str]) -> list[str]:
    out = []
    isa = f.isa(report)
    precision = cand.get("precision")
    if precision in ("int8", "mixed") or any(p.startswith("int8") for p in passes):
        if isa is None:
            out.append("the machine's ISA flags were not recorded: cannot tell whether INT8 "
                       "had VNNI/AMX dot-product instructions")
        elif not any(isa.get(flag) for flag in INT8_ISA):
            out.append("no VNNI/AMX on this CPU (avx512_vnni, avx_vnni, amx_int8 absent): "
                       "each INT8 dot product takes several instructions, so INT8 kernels "
                       "are not faster than FP32 ones")
    if "int8_dynamic" in passes:
        out.append("dynamic INT8 computes activation scales and quantizes activations on "
                   "every call; on convolutional networks that overhead outweighs the INT8 "
                   "gain (use int8_static)")
    if (precision == "fp16" and isa is not None and not isa.get("avx512_fp16")
            and cand.get("runtime") != "tensorrt"):
        out.append("no native FP16 arithmetic on this CPU (avx512_fp16 absent): FP16 is "
                   "converted to FP32 around the operations")
    if precision == "bf16" and isa is not None and not (isa.get("avx512_bf16")
                                                        or isa.get("amx_bf16")):
        out.append("no BF16 instructions on this CPU (avx512_bf16, amx_bf16 absent): BF16 "
                   "is emulated through FP32")
    return out


def _layout_reasons(cand: dict, passes: list[str]) -> list[str]:
    if "channels_last" not in passes:
        return []
    if cand.get("runtime") in TORCH_RUNTIMES:
        return ["channels_last converts the input to NHWC and the output back on every "
                "call, and operations without NHWC kernels convert back and forth inside"]
    return [f"channels_last is a PyTorch memory format: the graph {cand.get('runtime')} runs "
            "is NCHW again, so the layout change is lost and conversions may be added"]


def _compression_reasons(cand: dict, ref: dict, report: dict, passes: list[str]) -> list[str]:
    out = []
    if any("magnitude" in p or "unstructured" in p for p in passes):
        out.append("unstructured (magnitude) pruning zeroes weights but keeps the tensors "
                   "dense: dense kernels do the same work on the zeros")
    macs, ref_macs = f.num(cand.get("macs")), f.num(ref.get("macs"))
    if macs and ref_macs and macs < 0.95 * ref_macs:
        saved = 100.0 * (1.0 - macs / ref_macs)
        text = (f"MACs are not latency: MACs fell by {saved:.0f} % ({ref_macs / 1e9:.3g} → "
                f"{macs / 1e9:.3g} GMAC) but the time did not")
        ridge, intensity = _ridge_and_intensity(cand, report)
        if ridge is not None and intensity is not None and intensity < ridge:
            text += (f"; at {intensity:.1f} op/byte (below the machine's ridge point "
                     f"{ridge:.1f} op/byte) it is memory-bound, so fewer MACs do not cut the "
                     "bytes moved")
        else:
            text += ("; thinner or factorised layers run at lower efficiency and add "
                     "layers, each with its own overhead")
        out.append(text)
    return out


def _ridge_and_intensity(cand: dict, report: dict) -> tuple[float | None, float | None]:
    from .charts import intensity_ops_per_byte, peak_gops

    limits = report.get("machine_limits") or {}
    peak, mem = peak_gops(cand, limits), f.num(limits.get("mem_gbs"))
    ridge = peak / mem if peak and mem else None
    return ridge, intensity_ops_per_byte(cand, report.get("model"))


def _size_reasons(cand: dict, report: dict) -> list[str]:
    macs = f.num(cand.get("macs")) or f.num((report.get("model") or {}).get("macs"))
    p50 = f.p50_ms(cand)
    if (macs is not None and macs < SMALL_MACS) or (p50 is not None and p50 < SMALL_P50_MS):
        shown = f"{macs / 1e6:.3g} MMAC, " if macs is not None else ""
        return [f"too small to gain: the model is {shown}p50 {p50:.3g} ms, so the runtime's "
                "per-call and per-layer overhead weighs as much as the arithmetic"]
    return []


def _noise_reasons(cand: dict, ref: dict, ratio: float) -> list[str]:
    cvs = [f.num((c.get("latency_ms") or {}).get("cv")) for c in (cand, ref)]
    if any(cv is None for cv in cvs):
        return []
    spread = (cvs[0] ** 2 + cvs[1] ** 2) ** 0.5
    if abs(ratio - 1.0) <= spread:
        return [f"the difference ({100 * (ratio - 1):+.1f} %) is within the measurement "
                f"spread (cv {100 * cvs[0]:.1f} % and {100 * cvs[1]:.1f} %): no measurable "
                "change either way"]
    return []


def slow_rows(report: dict) -> list[dict[str, Any]]:
    """Every measured candidate that did not speed things up, with its reasons."""
    rows = []
    for cand in report.get("candidates") or []:
        found = no_gain(cand, report)
        if found:
            what, ref, ratio = found
            rows.append({"id": cand.get("id"), "label": cand.get("label"),
                         "runtime": cand.get("runtime"), "reference": what,
                         "reference_id": ref.get("id"), "ratio": ratio,
                         "reasons": explain(cand, report)})
    return rows


def mixed_ledger_rows(report: dict) -> list[dict[str, Any]]:
    """Layers kept in float: what each costs (ms) and saves (points), and ms per point."""
    mixed = report.get("mixed_precision") or {}
    rows = []
    for entry in mixed.get("ledger") or []:
        cost, saved = f.num(entry.get("cost_ms")), f.num(entry.get("drop_saved"))
        rows.append({"layer": entry.get("layer"), "cost_ms": cost, "drop_saved": saved,
                     "ms_per_point": cost / saved if cost is not None and saved else None})
    return rows
