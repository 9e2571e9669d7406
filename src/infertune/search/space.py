"""Which candidates a model gets, stage by stage, as a deployment engineer would try them:
original → fused (FP32 on every runtime) → quantized (INT8 static with each calibration,
INT8 dynamic, BF16/FP16 where the CPU computes them natively) → mixed (only when no INT8
candidate met the budget: the K most sensitive layers kept in float) → pruned / decomposed
(with recovery, where training is affordable) → continued (the most promising of those
trained longer) → combined (the best compression with the
best quantization) → configured (the best few contenders within budget, each opened with
the runtime configurations its runtime proposes: threads, spinning, optimisation level,
hint, streams, pinning; the same artifact, timed side by side with its default).

Each planned candidate is a `Candidate` (search/candidate.py) holding its `Plan`, with status
PLANNED, or SKIPPED with the reason. Pure: everything the plan depends on comes in a
PlanContext, so a resumed run plans exactly the same candidates.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..runtimes import RUNTIMES
from .candidate import Candidate, Plan, Status, Step
from .ids import candidate_id

STAGES = ("original", "fused", "quantized", "recalibrated", "mixed", "pruned", "decomposed",
          "continued", "combined", "configured")
# Other activation-range calibrations of a min-max INT8 recipe: (engine, runtime) → methods.
# The same graph with other scales runs exactly as fast, so they can only recover accuracy:
# they are built only when their min-max sibling misses the budget (`recalibrated`), which
# keeps ORT's histogram calibrations (~2 min each on darknet19_448) out of runs that do not
# need them.
RECALIBRATIONS = {("ort", "onnxruntime"): ("percentile", "entropy"),
                  ("nncf", "openvino"): ("mean_minmax",)}
# How many of the fastest contenders within budget get the configured stage (each costs
# (1 + its configurations) × rounds measurements).
CONFIG_CONTENDERS = 2
MIXED_KEEP = (1, 2, 4, 8)
# K for the cost-ranked variants (mixed_precision rank=cost: sensitivity per measured ms kept
# float, on the INT8 candidate's runtime). K=1 is left out: the single most sensitive layer
# is usually also the best buy (EfficientNet-Lite0 on OpenVINO: the stem, 9.7 dB, +0.02 ms);
# the rankings part where several layers are kept and their costs differ.
MIXED_COST_KEEP = (2, 4, 8)
# Where a cost ranking can be measured: the runtimes whose per-layer profile `_layer_cost`
# reads (an NNCF IR runs on openvino only).
COST_RUNTIMES = {"ort": ("onnxruntime", "openvino"), "nncf": ("openvino",)}
# The combined stage puts the best compression under each of this many quantizations (the
# fastest within budget). One was not enough: on ref-clutter the fastest, NNCF with mean
# ranges, took the 25% prune (−0.4 points alone) to −0.2 [upper +1.23], over a 1-point
# budget, while NNCF min-max had cost the unpruned model less (−0.3 vs +0.2). Each costs
# one quantization and evaluation: the pruned weights come from the run's cache.
COMBINED_QUANTIZERS = 2
PRUNE_RATIOS = (0.25, 0.5)
# The passes that change a model's structure in the compressed stage (recovery follows them).
STRUCTURAL_PASSES = ("prune_channels", "low_rank")
RECOVERY_PASSES = ("distill", "finetune")
LOW_RANK_ENERGY = (0.9,)
# Recovery is affordable when its time allows this many training steps on a batch of 16
# (one step estimated at 3 × the baseline's batch-1 latency × 16: forward + backward ≈ 3
# forwards). 60: at the old fixed 60 s, one step had to take under 1 s.
MIN_RECOVERY_STEPS = 60
# Recovery needs this many training images (10% of them held out for its early stop): on
# fewer, distillation fits the few it sees. ref-clutter's 25% prune recovered on 4,000
# scenes; a run on photos has only its 128 calibration views to train on.
MIN_RECOVERY_SAMPLES = 1000
# Recovery time when the user leaves it to the search (`recovery_seconds`): a share of the
# time budget per compression candidate, within these bounds. Measured on ref-clutter: a 25%
# channel prune distilled for 60 s lost 7.6 points of top-1, for 600 s gained 0.4.
RECOVERY_SHARE = 0.15
RECOVERY_BOUNDS_S = (60.0, 600.0)
RECOVERY_UNBUDGETED_S = 300.0
# Recovery by successive halving: each structure first trains for this share of its recovery
# time; then one of them, the fastest that is not yet within budget and was still learning,
# continues with the time the first rounds left (`continued`, chosen in run._continued).
# Why: a structure's recovery is worth most where the structure is fastest, and time split
# evenly is too short for every structure at once. Measured on ref-clutter (4,000 scenes):
# the 50% prune distilled 135 s missed the budget by +3.0 points and 600 s met it at -0.8;
# the 25% prune, slower, was still +0.7 after 600 s. Why a third: the choice needs the
# structures' speeds (known before training) and whether each still learns, which a short
# first recovery shows; in a 15-minute run with halves, the 50% prune continued for 202.5 s
# after 67.5 s ended at +0.7 [+0.0, +1.3], and the other two structures' 135 s of first
# recoveries went to candidates that could not be the pick. With three structures trained,
# the one continued gets 2.33 times the time an even split gave it (a third, then 3 × 2/3).
RECOVERY_FIRST_SHARE = 1 / 3


@dataclass(frozen=True)
class PlanContext:
    """What planning depends on.

    Attributes:
        model_key: identifies the model (source, load options, input size) in candidate ids.
        model_format: "torch" or "onnx".
        runtimes: available runtimes in preference order; unavailable: name → reason.
        isa: CPU feature flags (measure.fingerprint.isa_summary).
        allowed_passes: pass names candidates may use (None: any registered).
        registered_passes: names in the pass registry.
        calib_samples: calibration samples for INT8.
        train_samples: training samples recovery may use (the run's train part, else the
            calibration part; 0: none).
        recovery_seconds: time budget of each recovery (distill/finetune).
        train_step_s: estimated seconds of one training step (None: unknown).
        gpu: whether a CUDA GPU is here.
        detector: the model has detection heads (mixed precision keeps its head first).
        softmax: the model has a Softmax layer (the quantized-Softmax candidate is planned).
        objective: the run's objective ("latency": batch 1, "throughput", "size").
        threads: the run's thread count; max_threads: the most a configuration may use
            (the logical CPUs when the user did not fix --threads, else `threads`).
    """

    model_key: Mapping[str, Any]
    model_format: str
    runtimes: Sequence[str]
    unavailable: Mapping[str, str] = field(default_factory=dict)
    isa: Mapping[str, bool] = field(default_factory=dict)
    allowed_passes: frozenset[str] | None = None
    registered_passes: frozenset[str] = frozenset()
    calib_samples: int = 128
    train_samples: int = 4096
    recovery_seconds: float = 60.0
    train_step_s: float | None = None
    gpu: bool = False
    reference_runtime: str = "torch"
    detector: bool = False
    softmax: bool = False
    objective: str = "latency"
    threads: int = 1
    max_threads: int = 1


def recovery_seconds(asked: float | None, time_budget_s: float | None) -> float:
    """Each recovery's training time: what the user asked, else RECOVERY_SHARE of the time
    budget within RECOVERY_BOUNDS_S (RECOVERY_UNBUDGETED_S with no time budget)."""
    if asked is not None:
        return float(asked)
    if time_budget_s is None:
        return RECOVERY_UNBUDGETED_S
    low, high = RECOVERY_BOUNDS_S
    return float(min(high, max(low, round(RECOVERY_SHARE * time_budget_s))))


def step(name: str, **options: Any) -> Step:
    return Step(name, options)


def make(ctx: PlanContext, stage: str, recipe: Sequence[Step], runtime: str, precision: str,
         parent_id: str | None = None) -> Candidate:
    """One planned candidate; skipped with the reason when its runtime or a pass is missing."""
    recipe = tuple(recipe)
    cid = candidate_id(ctx.model_key, [s.to_json() for s in recipe], runtime)
    label = " + ".join(s.label for s in recipe) or "original"
    plan = Plan(id=cid, stage=stage, label=f"{label} → {runtime}", recipe=recipe,
                runtime=runtime, precision=precision, parent_id=parent_id,
                prior_speedup=RUNTIMES.prior_speedup(runtime, precision))  # Runtime.prior_speedups
    why = _why_not(ctx, recipe, runtime)
    return Candidate(plan, Status.SKIPPED, why) if why else Candidate(plan)


def skip(cand: Candidate, reason: str) -> Candidate:
    """`cand` skipped for `reason`, unless planning already skipped it for another."""
    return cand.with_(status=Status.SKIPPED, reason=reason) \
        if cand.status is Status.PLANNED else cand


def _why_not(ctx: PlanContext, recipe: Sequence[Step], runtime: str) -> str | None:
    if runtime in ctx.unavailable:
        return f"runtime {runtime} unavailable: {ctx.unavailable[runtime]}"
    if runtime not in ctx.runtimes:
        return f"runtime {runtime} not requested"
    for s in recipe:
        if s.pass_name not in ctx.registered_passes:
            return f"pass {s.pass_name} is not available in this version"
        if ctx.allowed_passes is not None and s.pass_name not in ctx.allowed_passes:
            return f"pass {s.pass_name} not in --passes"
    return None


def baseline(ctx: PlanContext) -> Candidate:
    """The float model on the reference runtime, unchanged: every drop is measured against it."""
    cand = make(ctx, "original", [], ctx.reference_runtime, "fp32")
    plan = dataclasses.replace(cand.plan, label=f"original → {ctx.reference_runtime}")
    return Candidate(plan)


def graph_prefix(ctx: PlanContext) -> list[Step]:
    """Exact rewrites every candidate starts from (conv+BN folding)."""
    return [step("fold_bn")]


def fused(ctx: PlanContext) -> list[Candidate]:
    runtimes = [r for r in RUNTIMES.ordered() if r in ctx.runtimes or r in ctx.unavailable]
    if ctx.model_format != "torch":
        runtimes = [r for r in runtimes if "onnx" in RUNTIMES.get(r).accepts]
    return [make(ctx, "fused", graph_prefix(ctx), r, "fp32") for r in runtimes]


def quantized(ctx: PlanContext) -> list[Candidate]:
    g, n = graph_prefix(ctx), ctx.calib_samples
    out = [make(ctx, "quantized", g + [step("int8_static", engine="ort", method="minmax",
                                            samples=n)], runtime, "int8")
           for runtime in ("onnxruntime", "openvino")]
    # The Softmax quantized too (ORT's default; infertune keeps it float unless its range
    # allows, `_ort_quant.softmax_refusal`): a float Softmax costs a DequantizeLinear and
    # float work at the end of the graph. Measured, not assumed: planned where the model
    # has a Softmax layer, and the pass refuses (the candidate is skipped, saying why) where
    # the calibration data show its range does not allow it.
    if ctx.softmax:
        out.append(make(ctx, "quantized", g + [step("int8_static", engine="ort",
                                                    method="minmax", softmax="int8",
                                                    samples=n)], "onnxruntime", "int8"))
    # NNCF with min-max ranges; its mean-of-min/max sibling is `recalibrated`'s (neither wins
    # everywhere: on efficientnet_lite0 (photos) minmax kept 82% top-1 agreement and
    # mean_minmax 45%; on ref-clutter minmax cost 0.3 points, NNCF's default 0.1).
    out.append(make(ctx, "quantized", g + [step("int8_static", engine="nncf", samples=n)],
                    "openvino", "int8"))
    if ctx.model_format == "torch":
        out.append(make(ctx, "quantized", g + [step("int8_static", engine="torch", samples=n)],
                        "compile", "int8"))
    out.append(make(ctx, "quantized", g + [step("int8_dynamic")], "onnxruntime", "int8-dynamic"))
    out += _low_precision(ctx, g)
    return out


def _low_precision(ctx: PlanContext, g: list[Step]) -> list[Candidate]:
    """BF16/FP16 only where this CPU computes them natively; otherwise skipped, saying so."""
    out = []
    bf16_native = ctx.isa.get("avx512_bf16") or ctx.isa.get("amx_bf16")
    fp16_native = ctx.isa.get("avx512_fp16")
    for runtime in ("openvino", "compile"):
        if runtime == "compile" and ctx.model_format != "torch":
            continue
        target = "torch" if runtime == "compile" else runtime
        cand = make(ctx, "quantized", g + [step("bf16", target=target)], runtime, "bf16")
        if not bf16_native:
            cand = skip(cand, "this CPU has no native BF16 arithmetic (no avx512_bf16/"
                              "amx_bf16): BF16 would be emulated, slower than FP32")
        out.append(cand)
    cand = make(ctx, "quantized", g + [step("fp16", target="openvino")], "openvino", "fp16")
    if not fp16_native:
        cand = skip(cand, "this CPU has no native FP16 arithmetic (no avx512_fp16): FP16 "
                          "would be emulated or upcast, no faster than FP32")
    out.append(cand)
    if "tensorrt" in ctx.runtimes:  # an FP16 ONNX (float32 I/O), built with TensorRT's FP16 flag
        out.append(make(ctx, "quantized", g + [step("fp16", target="onnxruntime")], "tensorrt",
                        "fp16"))
    return out


def recalibration_methods(cand: Candidate) -> tuple[str, ...]:
    """The RECALIBRATIONS of a min-max INT8 candidate (its last step int8_static with the
    default min-max ranges and Softmax handling), () for any other candidate."""
    last = cand.plan.recipe[-1] if cand.plan.recipe else None
    if last is None or last.pass_name != "int8_static" or cand.plan.stage != "quantized":
        return ()
    opts = last.options
    if opts.get("method", "minmax") != "minmax" or opts.get("softmax", "float") != "float":
        return ()
    return RECALIBRATIONS.get((opts.get("engine", "ort"), cand.runtime), ())


def recalibrated(ctx: PlanContext, sibling: Candidate, why_not: str | None) -> list[Candidate]:
    """The other calibrations of the min-max INT8 `sibling`, on its runtime; each skipped
    with `why_not` when given (the run's reason not to build them)."""
    head, last = list(sibling.plan.recipe[:-1]), sibling.plan.recipe[-1]
    out = []
    for method in recalibration_methods(sibling):
        cand = make(ctx, "recalibrated", head + [step("int8_static",
                                                      **{**last.options, "method": method})],
                    sibling.runtime, sibling.plan.precision, parent_id=sibling.id)
        out.append(skip(cand, why_not) if why_not else cand)
    return out


def mixed(ctx: PlanContext, int8: Candidate, n_layers: int) -> list[Candidate]:
    """Layers kept in float for the INT8 recipe `int8` (ort or nncf): the K most sensitive
    (MIXED_KEEP), and, where the INT8 runtime's per-layer profile can be read, the K with
    the most sensitivity per measured ms of keeping them float (MIXED_COST_KEEP, rank=cost
    on that runtime). Only K below the model's `n_layers` quantizable layers (K ≥ n would
    keep everything float). For a detector the head's layers come first (head_first)."""
    opts = dict(int8.plan.recipe[-1].options)
    engine = opts.get("engine", "ort")
    if engine not in ("ort", "nncf"):
        return []
    base = {k: v for k, v in opts.items() if k in ("engine", "method", "samples", "softmax")}
    if ctx.detector:  # the head's layers first, K of them chosen under the mAP budget
        base["head_first"] = True
    variants = [(k, {}) for k in MIXED_KEEP if k < n_layers]
    if int8.runtime in COST_RUNTIMES[engine]:
        cost = {"rank": "cost", "cost_runtime": int8.runtime}
        variants += [(k, cost) for k in MIXED_COST_KEEP if k < n_layers]
    prefix = list(int8.plan.recipe[:-1])
    return [make(ctx, "mixed", prefix + [step("mixed_precision", keep=str(k), **base, **extra)],
                 int8.runtime, "mixed", parent_id=int8.id) for k, extra in variants]


def compressed(ctx: PlanContext, fp32: Candidate, labelled: bool) -> list[Candidate]:
    """Pruned and decomposed variants (each followed by recovery) on the fastest FP32 runtime."""
    # No early stop (patience=0): the held-out split's top-1 is noisy (±1.5 points on 400
    # images), and patience 4 stopped ref-clutter's 25% prune at step 650 of 600 s (best
    # 89.3% at step 450) where the whole 600 s reached 91.3% at step 750. The best
    # validated weights are still the ones kept.
    recovery = step("distill", seconds=first_recovery_seconds(ctx), patience=0)
    plans = [("pruned", [step("prune_channels", ratio=r)]) for r in PRUNE_RATIOS]
    plans += [("decomposed", [step("low_rank", energy=e)]) for e in LOW_RANK_ENERGY]
    out = []
    for stage, head in plans:
        cand = make(ctx, stage, head + [recovery] + graph_prefix(ctx), fp32.runtime, "fp32",
                    parent_id=fp32.id)
        if ctx.model_format != "torch":
            cand = skip(cand, "pruning and decomposition edit torch models; this model is ONNX")
        elif ctx.train_samples < MIN_RECOVERY_SAMPLES and not _forced(ctx, head[0].pass_name):
            cand = skip(cand, f"too little training data for recovery: {ctx.train_samples} "
                              f"image(s), under {MIN_RECOVERY_SAMPLES} (give --data a set "
                              f"with a training part, or name {head[0].pass_name} in "
                              f"--passes to try it anyway)")
        elif ctx.train_step_s is not None \
                and ctx.recovery_seconds < MIN_RECOVERY_STEPS * ctx.train_step_s \
                and not _forced(ctx, head[0].pass_name):
            cand = skip(cand, f"recovery too slow here: one training step ≈ "
                              f"{ctx.train_step_s:.1f} s, so {ctx.recovery_seconds:g} s of "
                              f"recovery is under {MIN_RECOVERY_STEPS} steps and would not "
                              f"recover accuracy; give --recovery-seconds "
                              f"{MIN_RECOVERY_STEPS * ctx.train_step_s:.0f} or more, or name "
                              f"{head[0].pass_name} in --passes to try it anyway")
        out.append(cand)
    return out


def first_recovery_seconds(ctx: PlanContext) -> float:
    """Each structure's first recovery (RECOVERY_FIRST_SHARE of ctx.recovery_seconds)."""
    return round(RECOVERY_FIRST_SHARE * ctx.recovery_seconds, 1)


def continued(ctx: PlanContext, comp: Candidate, seconds: float) -> Candidate:
    """`comp` trained `seconds` more: its recipe with a second recovery step after its first.
    The first step's weights come from the run's trained cache (passes/_trained_cache), so
    only the continuation trains; Adam starts afresh and the best validated weights of the
    continuation are kept (those it started from when nothing improved)."""
    recipe = list(comp.plan.recipe)
    at = max(i for i, s in enumerate(recipe) if s.pass_name in RECOVERY_PASSES)
    first = recipe[at]
    recipe.insert(at + 1, step(first.pass_name, **{**first.options, "seconds": seconds}))
    return make(ctx, "continued", recipe, comp.runtime, comp.plan.precision, parent_id=comp.id)


def unrecovered(ctx: PlanContext, comp: Sequence[Candidate]) -> list[Candidate]:
    """Each planned (not skipped) compression candidate's structural step alone, no recovery:
    built and probed in seconds, it says whether that structure is faster at all before
    its recovery trains for minutes (`run._worth_recovering`), and it is a candidate in its
    own right (a prune some model tolerates untrained)."""
    out = []
    for cand in comp:
        if cand.status is not Status.PLANNED:
            continue
        head = [s for s in cand.plan.recipe if s.pass_name in STRUCTURAL_PASSES]
        out.append(make(ctx, cand.plan.stage, head + graph_prefix(ctx), cand.runtime, "fp32",
                        parent_id=cand.plan.parent_id))
    return out


def structure_of(cand: Candidate) -> str:
    """The structural steps of a compression recipe (what `unrecovered` keeps), as a key."""
    steps = [s.to_json() for s in cand.plan.recipe if s.pass_name in STRUCTURAL_PASSES]
    return json.dumps(steps, sort_keys=True)


def _forced(ctx: PlanContext, name: str) -> bool:
    return ctx.allowed_passes is not None and name in ctx.allowed_passes


def combined(ctx: PlanContext, comp: Candidate, int8: Candidate) -> list[Candidate]:
    """The best compression followed by one of the best quantizations (run.py takes the
    COMBINED_QUANTIZERS fastest within budget), on the quantization's runtime."""
    head = [s for s in comp.plan.recipe if s.pass_name != "fold_bn"]
    tail = [s for s in int8.plan.recipe if s.pass_name != "fold_bn"]
    recipe = head + graph_prefix(ctx) + tail
    return [make(ctx, "combined", recipe, int8.runtime, int8.plan.precision, parent_id=comp.id)]


def configured(ctx: PlanContext, contender: Candidate) -> list[Candidate]:
    """The contender opened with each runtime configuration its runtime proposes for the
    run's objective and threads (`Runtime.configurations`): the same recipe and artifact,
    its options in the id, the label and `Plan.runtime_options`. [] when the runtime
    proposes none."""
    runtime = RUNTIMES.find(contender.runtime)
    variants = runtime.configurations(ctx.objective, ctx.threads, ctx.max_threads) \
        if runtime is not None else []
    out = []
    for options in variants:
        recipe = [s.to_json() for s in contender.plan.recipe]
        cid = candidate_id(ctx.model_key, recipe, contender.runtime, options)
        plan = dataclasses.replace(contender.plan, id=cid, stage="configured",
                                   label=f"{contender.label} [{options_label(options)}]",
                                   parent_id=contender.id, runtime_options=dict(options))
        out.append(Candidate(plan))
    return out


def config_skip_reason(ctx: PlanContext, rounds: int) -> str | None:
    """Why the configured stage cannot decide anything in this run, or None."""
    if ctx.objective == "size":
        return "the objective is size: a runtime configuration does not change the artifact"
    if rounds < 2:
        return (f"{rounds} side-by-side round(s) (--final-rounds): a configuration replaces "
                "the default only when its rounds do not overlap the default's, which needs "
                "at least 2 rounds")
    return None


def options_label(options: Mapping[str, Any]) -> str:
    """"threads=1, spinning=False" (config entries as their keys)."""
    parts = []
    for key, value in options.items():
        if isinstance(value, Mapping):
            parts += [f"{k}={v}" for k, v in value.items()]
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def measured_options(runtime: str, runtime_options: Mapping[str, Any],
                     batch: int | None = 1) -> dict[str, Any]:
    """The opener options a candidate is measured with: the runtime's own for `batch`, its
    configuration over them ("threads" is the measurement's thread count, set apart)."""
    found = RUNTIMES.find(runtime)
    base = found.options(batch) if found is not None else {}
    return {**base, **{k: v for k, v in runtime_options.items() if k != "threads"}}


def order(cands: Iterable[Candidate]) -> list[Candidate]:
    """Highest expected speed-up first (the time budget then cuts the least promising)."""
    return sorted(cands, key=lambda c: -c.plan.prior_speedup)
