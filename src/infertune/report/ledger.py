"""Why a pass did not pay: `explain`, and the mixed-precision ledger.

`explain` is a pure function of one candidate and the report. It names only the causes
infertune can detect from what the report records (recipe, precision, runtime, MACs, the
machine's ISA flags and measured limits, latency spread), never a guess dressed as a
measurement.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..machine import INT8_DOT_FLAGS
from ..runtimes import RUNTIMES
from ..search.candidate import Candidate, PassReport
from . import fields as f
from .run_report import RunReport

# A step that buys less than 5 % is "no gain": single runs swing more than that on shared
# machines, so a smaller difference is not a result anyone should act on.
NO_GAIN_RATIO = 1.05
# Below these the runtime's fixed per-call and per-layer costs are a large share of the time.
SMALL_MACS = 50e6
SMALL_P50_MS = 1.0


def references(cand: Candidate, report: RunReport) -> list[tuple[str, Candidate]]:
    """(what, candidate) to measure `cand` against: its parent, and the fused FP32 of the
    same runtime, where measured and not `cand` itself."""
    refs = []
    parent = report.by_id.get(cand.plan.parent_id)
    if parent is not None and f.is_measured(parent):
        refs.append(("its parent", parent))
    fused = [o for o in report.candidates
             if o.plan.stage == "fused" and o.precision == "fp32"
             and o.runtime == cand.runtime and f.is_measured(o)]
    # The plainest fused FP32 (shortest recipe) is the reference every later stage builds on.
    fused.sort(key=lambda o: len(o.plan.recipe))
    if fused and fused[0].id not in (cand.id, cand.plan.parent_id):
        refs.append((f"the fused FP32 on {cand.runtime}", fused[0]))
    return refs


def no_gain(cand: Candidate, report: RunReport) -> tuple[str, Candidate, float] | None:
    """(what, reference, reference p50 / candidate p50) for the first reference the
    candidate is not ≥ 5 % faster than; None when it is faster than all (or unmeasured).
    The p50s are the ones the report shows (`fields.decisive_p50`)."""
    if not f.is_measured(cand) or cand.plan.stage == "original":
        return None
    for what, ref in references(cand, report):
        ratio = f.decisive_p50(ref, report) / f.decisive_p50(cand, report)
        if ratio <= NO_GAIN_RATIO:
            return what, ref, ratio
    return None


def explain(cand: Candidate, report: RunReport) -> list[str]:
    """Likely reasons why `cand` is not faster than its parent or the fused FP32 of its
    runtime; [] when it is faster (or was not measured)."""
    found = no_gain(cand, report)
    if found is None:
        return []
    _, ref, ratio = found
    passes = cand.plan.passes()
    reasons = (_precision_reasons(cand, report, passes) + _layout_reasons(cand, passes)
               + _compression_reasons(cand, ref, report, passes)
               + _size_reasons(cand, report) + _noise_reasons(cand, ref, ratio))
    return reasons or ["no cause infertune can detect; compare the per-layer times"]


def _precision_reasons(cand: Candidate, report: RunReport, passes: list[str]) -> list[str]:
    out = []
    isa = f.isa(report)
    precision = cand.precision
    if precision in ("int8", "mixed") or any(p.startswith("int8") for p in passes):
        if isa is None:
            out.append("the machine's ISA flags were not recorded: cannot tell whether INT8 "
                       "had VNNI/AMX dot-product instructions")
        elif not any(isa.get(flag) for flag in INT8_DOT_FLAGS):
            out.append("no VNNI/AMX on this CPU (avx512_vnni, avx_vnni, amx_int8 absent): "
                       "each INT8 dot product takes several instructions, so INT8 kernels "
                       "are not faster than FP32 ones")
    if "int8_dynamic" in passes:
        out.append("dynamic INT8 computes activation scales and quantizes activations on "
                   "every call; on convolutional networks that overhead outweighs the INT8 "
                   "gain (use int8_static)")
    if (precision == "fp16" and isa is not None and not isa.get("avx512_fp16")
            and not _on_gpu(cand.runtime)):
        out.append("no native FP16 arithmetic on this CPU (avx512_fp16 absent): FP16 is "
                   "converted to FP32 around the operations")
    if precision == "bf16" and isa is not None and not (isa.get("avx512_bf16")
                                                        or isa.get("amx_bf16")):
        out.append("no BF16 instructions on this CPU (avx512_bf16, amx_bf16 absent): BF16 "
                   "is emulated through FP32")
    return out


def _on_gpu(name: str) -> bool:
    runtime = RUNTIMES.find(name)
    return runtime is not None and runtime.needs_gpu


def _layout_reasons(cand: Candidate, passes: list[str]) -> list[str]:
    if "channels_last" not in passes:
        return []
    runtime = RUNTIMES.find(cand.runtime)
    if runtime is not None and runtime.family == "torch":
        return ["channels_last converts the input to NHWC and the output back on every "
                "call, and operations without NHWC kernels convert back and forth inside"]
    return [f"channels_last is a PyTorch memory format: the graph {cand.runtime} runs "
            "is NCHW again, so the layout change is lost and conversions may be added"]


def _compression_reasons(cand: Candidate, ref: Candidate, report: RunReport,
                         passes: list[str]) -> list[str]:
    out = []
    if any("magnitude" in p or "unstructured" in p for p in passes):
        out.append("unstructured (magnitude) pruning zeroes weights but keeps the tensors "
                   "dense: dense kernels do the same work on the zeros")
    macs, ref_macs = f.macs(cand), f.macs(ref)
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


def _ridge_and_intensity(cand: Candidate, report: RunReport
                         ) -> tuple[float | None, float | None]:
    from .charts import intensity_ops_per_byte, peak_gops

    limits = report.machine_limits or {}
    peak, mem = peak_gops(cand, limits), f.num(limits.get("mem_gbs"))
    ridge = peak / mem if peak and mem else None
    return ridge, intensity_ops_per_byte(cand, report.model)


def _size_reasons(cand: Candidate, report: RunReport) -> list[str]:
    macs = f.macs(cand) or f.num(report.model.get("macs"))
    p50 = f.decisive_p50(cand, report)
    if (macs is not None and macs < SMALL_MACS) or (p50 is not None and p50 < SMALL_P50_MS):
        shown = f"{macs / 1e6:.3g} MMAC, " if macs is not None else ""
        return [f"too small to gain: the model is {shown}p50 {p50:.3g} ms, so the runtime's "
                "per-call and per-layer overhead weighs as much as the arithmetic"]
    return []


def _noise_reasons(cand: Candidate, ref: Candidate, ratio: float) -> list[str]:
    cvs = [f.latency_cv(c) for c in (cand, ref)]
    if any(cv is None for cv in cvs):
        return []
    spread = (cvs[0] ** 2 + cvs[1] ** 2) ** 0.5
    if abs(ratio - 1.0) <= spread:
        return [f"the difference ({100 * (ratio - 1):+.1f} %) is within the measurement "
                f"spread (cv {100 * cvs[0]:.1f} % and {100 * cvs[1]:.1f} %): no measurable "
                "change either way"]
    return []


def slow_rows(report: RunReport) -> list[dict[str, Any]]:
    """Every measured candidate that did not speed things up, with its reasons."""
    rows = []
    for cand in report.candidates:
        found = no_gain(cand, report)
        if found:
            what, ref, ratio = found
            rows.append({"id": cand.id, "label": cand.label, "runtime": cand.runtime,
                         "reference": what, "reference_id": ref.id, "ratio": ratio,
                         "reasons": explain(cand, report)})
    return rows


# --------------------------------------------------------------------- mixed precision
def mixed_precision_report(cand: Candidate) -> PassReport | None:
    """The mixed_precision step's PassReport of `cand`, None where it has none."""
    passes = cand.screen.passes if cand.screen else ()
    return next((p for p in passes if p.pass_name == "mixed_precision"), None)


def _names(entries: Any) -> list[str]:
    """Layer names from a list of names or of {"layer": name, ...} (the pass's forms)."""
    out = []
    for entry in entries or ():
        name = entry.get("layer") if isinstance(entry, Mapping) else entry
        if name is not None:
            out.append(str(name))
    return out


def kept_float_layers(cand: Candidate) -> list[str]:
    """The layers mixed precision chose to keep in float, in the order chosen.

    Read from the mixed_precision PassReport's details with the pass's own reader
    (`passes.mixed_precision.kept_float_layers`, its `kept_by_choice` key). A report written
    before that key existed is read from the keys the pass wrote then: `keep` (the config,
    "K" or layer names), `sensitivity` (the ranking the K most sensitive layers came from)
    and `kept_float` (every float layer of the result with its reason: the chosen ones and
    those the quantizer keeps float anyway — Softmax, -FLT_MAX pads — which are not mixed
    precision's choice and are left out). A step that did not apply records its would-be
    choice as `kept`."""
    from ..passes.mixed_precision import kept_float_layers as chosen_by_pass

    rep = mixed_precision_report(cand)
    if rep is None:
        return []
    details = rep.details
    if not rep.applied:
        return _names(details.get("kept"))
    return chosen_by_pass(details) or _older_kept_float(details)


def _older_kept_float(details: Mapping[str, Any]) -> list[str]:
    keep = [str(k) for k in details.get("keep") or ()]
    floated = _names(details.get("kept_float"))
    if keep and not keep[0].isdigit():
        chosen = keep
    elif keep and details.get("sensitivity"):
        ranked = sorted(details["sensitivity"], key=lambda r: r.get("rank", 0))
        chosen = _names(ranked[:int(keep[0])])
    else:
        return floated
    # What the quantizer really left float, where it says (a chosen layer it quantized
    # anyway is not kept).
    return [n for n in chosen if n in floated] if floated else chosen


def mixed_ledger_rows(report: RunReport) -> list[dict[str, Any]]:
    """Layers kept in float, K by K: the layers each step added, what they cost (ms) and
    save (points), and ms per point saved. Reads report.json's mixed_precision ledger
    entries {"candidate", "rank", "layers": [names], "cost_ms", "drop_saved"} (an older
    report's single "layer" is read as one name; one without "rank" ranked by sensitivity)."""
    mixed = report.mixed_precision or {}
    rows = []
    for entry in mixed.get("ledger") or []:
        layers = entry.get("layers")
        if layers is None and entry.get("layer") is not None:
            layers = [entry["layer"]]
        cost, saved = f.num(entry.get("cost_ms")), f.num(entry.get("drop_saved"))
        cand = report.by_id.get(entry.get("candidate"))
        rows.append({"candidate": cand.label if cand else entry.get("candidate"),
                     "rank": str(entry.get("rank") or "sensitivity"),
                     "layers": [str(n) for n in layers or ()], "cost_ms": cost,
                     "drop_saved": saved,
                     "ms_per_point": cost / saved if cost is not None and saved else None})
    return rows
