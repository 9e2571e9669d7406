"""The training loop shared by the recovery passes (`finetune`, `distill`, `qat`).

Why Adam: recovery runs a few hundred steps on a model that is already close to a good
solution, with no learning-rate search; Adam's per-parameter step sizes make one default
learning rate work across layer widths and after pruning or decomposition changed the
weights' scales, where SGD would need a tuned rate, momentum warm-up and a schedule. The
default 1e-3 is the one that recovered ref-small after prune_channels ratio=0.5 in 200 steps
(top-1 on the held-out split 0.10 → 0.91; 1e-4 reached 0.37, 3e-4 0.75); restoring the best
validated weights guards against a rate too high for a larger model.

Deterministic with `seed`: torch.manual_seed, and the batch order is a numpy permutation per
epoch from the same seed (no DataLoader workers). With a `seconds` budget the number of steps
depends on the machine's speed, so only a `steps` budget repeats exactly.

Training arithmetic and layout (`Budget.autocast`, `Budget.layout`): with "auto" and a
`seconds` budget the loop first times forward + backward passes of one batch, interleaved,
in each allowed setup: FP32 in the default (NCHW) layout, FP32 with the weights in
channels_last, and, on a CPU with native BF16 (AVX-512 BF16 or AMX), torch.autocast(bfloat16)
in the faster of those layouts. Channels_last is kept where it measured faster by
LAYOUT_MARGIN (it changes the kernels, not the arithmetic); BF16 only where it measured faster
than the FP32 choice by AUTOCAST_MARGIN. The weights and Adam's state stay FP32 either way
(mixed precision, as torch.autocast intends), and the trained model is returned in the
layout it came in. Why: a recovery bounded by seconds gets more steps from a faster step (on the
AMX VM, a pruned ref-clutter's step went from 392 ms in FP32 NCHW to 297 ms with
channels_last and 158 ms with BF16 autocast too; the trial's timings are in the pass
details). Why measured, not assumed: oneDNN's channels_last and BF16 kernels win only where
the layers suit them, and without native BF16 it is emulated (then BF16 is not tried). The
trial counts against `seconds` and changes no weight or buffer. A `steps` budget trains in
FP32 NCHW: a faster step buys no step there, and the result must not depend on the machine.

Early stop: the validation metric (higher is better) is measured before training, every
`val_every` steps and at the end; after `patience` measurements without improvement the loop
stops, and the weights of the best measurement are restored (those before training when
nothing improved). The returned model is in eval mode.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # numpy is imported where used: `infertune list passes` imports no framework
    import numpy as np


QUIET_ENV = "INFERTUNE_QUIET"  # set to 1 to hide progress bars
VAL_FRACTION = 0.1  # held out of the training data when no validation data is given
DEFAULT_STEPS = 200  # when neither steps nor seconds is given
EVAL_BATCH = 64
AUTOCAST_CHOICES = ("auto", "fp32", "bf16")
LAYOUT_CHOICES = ("auto", "nchw", "channels_last")
SETUP_TRIAL = 3  # timed forward + backward passes per setup (after one warm-up each)
SETUP_SHARE = 0.05  # the trial stops adding rounds after this share of a seconds budget
AUTOCAST_MARGIN = 0.15  # BF16 must be this much faster than FP32 to be chosen
LAYOUT_MARGIN = 0.05  # channels_last must be this much faster than NCHW to be chosen


@dataclass(frozen=True)
class Budget:
    """How long to train and how to judge progress (the options every recovery pass shares).

    Attributes:
        steps: optimizer steps (None: DEFAULT_STEPS unless `seconds` is given).
        seconds: wall-clock budget for training (validation included).
        lr: Adam's learning rate.
        batch_size: samples per step.
        val_every: steps between validation measurements.
        patience: validations without improvement before stopping early (0: never).
        quiet: no progress bar.
        autocast: training arithmetic: "fp32", "bf16" (torch.autocast, FP32 weights) or
            "auto" (BF16 where a timed trial shows it faster; module docstring).
        layout: memory format of the weights while training: "nchw", "channels_last" or
            "auto" (channels_last where the timed trial shows it faster).
    """

    steps: int | None = None
    seconds: float | None = None
    lr: float = 1e-3
    batch_size: int = 32
    val_every: int = 50
    patience: int = 4
    quiet: bool = False
    autocast: str = "auto"
    layout: str = "auto"

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raises ValueError for a budget that cannot run."""
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, not {self.steps}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"seconds must be positive, not {self.seconds}")
        if self.lr <= 0 or self.batch_size < 1 or self.val_every < 1 or self.patience < 0:
            raise ValueError("lr must be > 0, batch_size and val_every ≥ 1, patience ≥ 0")
        if self.autocast not in AUTOCAST_CHOICES:
            raise ValueError(f"autocast must be one of {', '.join(AUTOCAST_CHOICES)}, "
                             f"not {self.autocast!r}")
        if self.layout not in LAYOUT_CHOICES:
            raise ValueError(f"layout must be one of {', '.join(LAYOUT_CHOICES)}, "
                             f"not {self.layout!r}")

    @property
    def max_steps(self) -> int | None:
        return self.steps if self.steps is not None or self.seconds else DEFAULT_STEPS


@dataclass
class Task:
    """What the loop trains: the model, its loss on a batch, its validation metric.

    Attributes:
        model: the module trained in place (the caller's copy).
        loss: (model, batch indices) → scalar loss tensor.
        metric: model (in eval mode) → validation metric, higher is better.
        metric_name: its name in the report ("top1", "teacher_agreement").
        n_train: training samples (batch indices are drawn from range(n_train)).
        set_mode: model, training → None (default: model.train(training)).
    """

    model: Any
    loss: Callable[[Any, np.ndarray], Any]
    metric: Callable[[Any], float]
    metric_name: str
    n_train: int
    set_mode: Callable[[Any, bool], None] | None = None


@dataclass
class Log:
    """What happened: reported in the pass details."""

    steps: int = 0
    best_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    stop: str = "budget"
    seconds: float = 0.0
    setup: dict[str, Any] = field(default_factory=dict)  # `_choose_setup`'s record

    def report(self, metric_name: str) -> dict[str, Any]:
        first, best = self.history[0]["value"], max(h["value"] for h in self.history)
        head, tail = _mean(self.losses[:10]), _mean(self.losses[-10:])
        return {"steps_run": self.steps, "seconds": round(self.seconds, 2),
                "val_metric": metric_name, "val_metric_before": round(first, 6),
                "val_metric_after": round(best, 6), "best_step": self.best_step,
                "stop_reason": self.stop, "loss_first10": head, "loss_last10": tail,
                "val_history": self.history, "training_setup": self.setup}


def _mean(values: list[float]) -> float | None:
    import numpy as np

    return round(float(np.mean(values)), 6) if values else None


def train(task: Task, budget: Budget, seed: int, threads: int | None) -> Log:
    """Trains task.model in place with Adam, restores the best validated weights, eval mode."""
    import torch

    log, start = Log(), time.perf_counter()
    with _threads(threads), torch.random.fork_rng():
        torch.manual_seed(seed)
        opt = torch.optim.Adam([p for p in task.model.parameters() if p.requires_grad],
                               lr=budget.lr)
        best = _validate(task, log, 0)
        best_state, stale = _snapshot(task.model), 0
        given = _layout_of(task.model)  # restored at the end (a channels_last pass's model)
        log.setup = _choose_setup(task, budget, seed)
        bf16 = log.setup["autocast"] == "bf16"
        _set_layout(task.model, log.setup["layout"])
        with _progress(budget, quiet=budget.quiet) as advance:
            for step, idx in enumerate(_batches(task.n_train, budget.batch_size, seed), 1):
                _step(task, opt, idx, log, bf16)
                log.steps = step
                advance(step, log.losses[-1])
                done = _out_of_budget(budget, step, start)
                if step % budget.val_every == 0 or done:
                    value = _validate(task, log, step)
                    if step == budget.val_every and not done and _no_progress(log, value):
                        bf16 = _fall_back(task.model, log, step, value)
                        task.model.load_state_dict(best_state)  # the start: nothing gained
                        opt = torch.optim.Adam([p for p in task.model.parameters()
                                                if p.requires_grad], lr=budget.lr)
                    if value > best:
                        best, best_state, stale, log.best_step = value, _snapshot(task.model), 0, step
                    else:
                        stale += 1
                    if budget.patience and stale >= budget.patience and not done:
                        log.stop = "early stop"
                        break
                if done:
                    break
    task.model.load_state_dict(best_state)
    _set_layout(task.model, given)
    _mode(task, False)
    log.seconds = time.perf_counter() - start
    return log


def _no_progress(log: Log, value: float) -> bool:
    """Whether a setup the timed trial chose (not FP32 NCHW) left the validation metric at
    or below its start at the first validation."""
    timed = "trial_ms" in log.setup
    default = (log.setup["autocast"], log.setup["layout"]) == ("fp32", "nchw")
    return timed and not default and round(value, 6) <= log.history[0]["value"]


def _fall_back(model: Any, log: Log, step: int, value: float) -> bool:
    """Switches the rest of the training to FP32 NCHW and records why; returns the new bf16
    flag (False). The caller restarts from the starting weights with a fresh optimizer:
    continuing from the stalled ones in FP32 did not learn either (41 more steps, still
    0.10).

    Why: the trial ranks setups by speed only, and the first step's gradients agree
    across setups, yet on a Zen 4 VM (AVX-512 BF16, no AMX) ref-clutter's 50% channel
    prune stayed at chance (validation top-1 0.10 at steps 0, 50 and 150) in BF16 +
    channels_last, where FP32 NCHW reached 0.50 at step 50 and 0.78 at step 150 from the
    same weights (BF16 NCHW 0.53 / 0.79). A model that is simply not improving (already
    converged) pays only slower steps for the rest of its budget."""
    was = f"{log.setup['autocast']}/{log.setup['layout']}"
    log.setup.update(autocast="fp32", layout="nchw", fallback={
        "step": step, "from": was,
        "why": f"validation {value:.4f} at step {step} not above its start "
               f"{log.history[0]['value']:.4f} in {was}: restarted from the start "
               f"in fp32/nchw"})
    _set_layout(model, "nchw")
    return False


def _step(task: Task, opt: Any, idx: np.ndarray, log: Log, bf16: bool = False) -> None:
    _mode(task, True)
    with _autocast(bf16):
        loss = task.loss(task.model, idx)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    log.losses.append(float(loss.detach()))


def _autocast(bf16: bool):
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def _layout_of(model: Any) -> str:
    """"channels_last" when the model's 4-D weights are stored so (a 1×1 kernel's weight is
    both, so it is the others that tell), else "nchw"."""
    import torch

    return "channels_last" if any(
        p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
        and not p.is_contiguous() for p in model.parameters()) else "nchw"


def _set_layout(model: Any, layout: str) -> None:
    import torch

    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model.to(memory_format=fmt)  # converts 4-D parameters and buffers only


def _choose_setup(task: Task, budget: Budget, seed: int) -> dict[str, Any]:
    """{"autocast", "layout", "why"[, "trial_ms"]} for the training steps (module
    docstring): the options, or for "auto" the outcome of a timed trial."""
    if budget.seconds is None:
        auto = {"autocast": "fp32", "layout": "nchw"}
        chosen = {k: auto[k] if getattr(budget, k) == "auto" else getattr(budget, k)
                  for k in auto}
        return {**chosen, "why": "the options; a steps budget trains in FP32 NCHW where they "
                                 "say auto (a faster step buys no step)"}
    from ..machine import native_support

    layouts = [budget.layout] if budget.layout != "auto" else ["nchw", "channels_last"]
    if not _has_4d_weights(task.model):
        layouts = [budget.layout if budget.layout != "auto" else "nchw"]
    arithmetic = [budget.autocast] if budget.autocast != "auto" else ["fp32", "bf16"]
    notes = []
    if budget.autocast == "auto":
        native = native_support("bf16")
        if not native["native"]:
            arithmetic = ["fp32"]
            notes.append(f"no BF16 trial: {native['note']}")
    if len(layouts) == 1 and len(arithmetic) == 1:
        return {"autocast": arithmetic[0], "layout": layouts[0],
                "why": "; ".join(["the options"] + notes)}
    fp32 = arithmetic[0] if len(arithmetic) == 1 else "fp32"
    setups = [(fp32, lay) for lay in layouts]
    if len(arithmetic) > 1:
        setups.append(("bf16", layouts[-1]))
    times = _time_setups(task, budget, seed, setups)
    med = {s: sorted(v)[len(v) // 2] for s, v in times.items()}
    chosen = setups[0]
    if len(layouts) > 1 and med[setups[1]] <= (1 - LAYOUT_MARGIN) * med[setups[0]]:
        chosen = setups[1]
    if len(arithmetic) > 1 and med[setups[-1]] <= (1 - AUTOCAST_MARGIN) * med[chosen]:
        chosen = setups[-1]
    shown = ", ".join(f"{a}/{lay} {1000 * t:.0f} ms" for (a, lay), t in med.items())
    rounds = len(next(iter(times.values())))
    why = (f"timed trial, median forward + backward of one batch: {shown} ({rounds} each "
           f"after a warm-up, interleaved; channels_last needs {LAYOUT_MARGIN:.0%} less than "
           f"NCHW, bf16 {AUTOCAST_MARGIN:.0%} less than the fp32 choice)")
    return {"autocast": chosen[0], "layout": chosen[1], "why": "; ".join([why] + notes),
            "trial_ms": {f"{a}/{lay}": [round(1000 * t, 2) for t in v]
                         for (a, lay), v in times.items()}}


def _time_setups(task: Task, budget: Budget, seed: int,
                 setups: list[tuple[str, str]]) -> dict[tuple[str, str], list[float]]:
    """Seconds of forward + backward of one batch per (autocast, layout), interleaved rounds
    after a warm-up round: SETUP_TRIAL rounds, fewer once the trial has used SETUP_SHARE of
    budget.seconds (at least one). The model's weights, buffers and layout are restored."""
    import torch

    batch = next(_batches(task.n_train, budget.batch_size, seed))
    kept, given = _snapshot(task.model), _layout_of(task.model)  # train mode moves BN stats
    _mode(task, True)
    times: dict[tuple[str, str], list[float]] = {s: [] for s in setups}
    start = time.perf_counter()
    for i in range(SETUP_TRIAL + 1):
        for arith, layout in setups:
            _set_layout(task.model, layout)
            t0 = time.perf_counter()
            with _autocast(arith == "bf16"):
                loss = task.loss(task.model, batch)
            loss.backward()
            task.model.zero_grad(set_to_none=True)
            if i:
                times[(arith, layout)].append(time.perf_counter() - t0)
        if i and time.perf_counter() - start >= SETUP_SHARE * float(budget.seconds):
            break
    task.model.load_state_dict(kept)
    _set_layout(task.model, given)
    torch.manual_seed(seed)  # the steps draw the same random numbers as without a trial
    return times


def _validate(task: Task, log: Log, step: int) -> float:
    import torch

    _mode(task, False)
    with torch.no_grad():
        value = float(task.metric(task.model))
    log.history.append({"step": step, "value": round(value, 6)})
    return value


def _mode(task: Task, training: bool) -> None:
    if task.set_mode is not None:
        task.set_mode(task.model, training)
    else:
        task.model.train(training)


def _snapshot(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _out_of_budget(budget: Budget, step: int, start: float) -> bool:
    if budget.max_steps is not None and step >= budget.max_steps:
        return True
    return budget.seconds is not None and time.perf_counter() - start >= budget.seconds


def _batches(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless seeded batches: a fresh permutation of range(n) per epoch; the last partial
    batch of an epoch is dropped unless the data is smaller than one batch."""
    import numpy as np

    rng = np.random.default_rng(seed)
    size = min(batch_size, n)
    while True:
        order = rng.permutation(n)
        for i in range(0, n - size + 1, size):
            yield order[i:i + size]


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _progress(budget: Budget, quiet: bool) -> Iterator[Callable[[int, float], None]]:
    """A rich progress bar on stderr (steps, or seconds with a time budget only), hidden when
    stderr is not a terminal, with quiet=True or INFERTUNE_QUIET=1."""
    if quiet or os.environ.get(QUIET_ENV, "") not in ("", "0") or not sys.stderr.isatty():
        yield lambda step, loss: None
        return
    from rich.console import Console
    from rich.progress import Progress

    total = budget.max_steps
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("training", total=total)
        yield lambda step, loss: bar.update(task, completed=step,
                                            description=f"training, loss {loss:.4f}")


# --------------------------------------------------------------------------- data and outputs


def training_data(ctx: Any, seed: int) -> tuple[Any, Any]:
    """(train, validation) Datasets: ctx.train (else ctx.calibration) and ctx.validation
    (else VAL_FRACTION of train held out, seeded and stratified when labelled)."""
    from ..data import split_calibration

    data = ctx.train if ctx.train is not None else ctx.calibration
    if data is None:
        return None, None
    if ctx.validation is not None:
        return data, ctx.validation
    n_val = max(1, int(round(VAL_FRACTION * len(data))))
    return split_calibration(data, len(data) - n_val, seed)


def logits(out: Any) -> Any:
    """The first tensor of a model's output as (batch, classes)."""
    from ..tensors import tensors_in

    return tensors_in(out)[0].flatten(1).float()


def is_probability(values: Any) -> bool:
    """Whether outputs look like softmax probabilities (Darknet nets ending in [softmax]):
    non-negative rows summing to 1. Their log is then used as logits (same softmax)."""
    import torch

    sums = values.sum(dim=1)
    return bool((values >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-3))


def as_logits(values: Any, probabilities: bool) -> Any:
    import torch

    return torch.log(values.clamp_min(1e-12)) if probabilities else values


def predict(model: Any, x: np.ndarray, probabilities: bool) -> Any:
    """Logits of `model` on all of x, in EVAL_BATCH chunks (no grad)."""
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(x), EVAL_BATCH):
            outs.append(as_logits(logits(model(torch.from_numpy(x[i:i + EVAL_BATCH]))),
                                  probabilities))
    return torch.cat(outs)


def predict_fastest(model: Any, x: np.ndarray, probabilities: bool) -> tuple[Any, str]:
    """`predict`'s logits, computed in whichever weight layout (NCHW or channels_last, FP32
    both: the same arithmetic in another summation order) ran its chunks faster, and that
    layout. Timed on the data itself: a warm-up chunk in each layout, then one timed chunk
    each; every chunk's output is kept. Why: the teacher's outputs on every training image
    cost about a minute at the start of the first recovery (ref-clutter, 4,096 images: 16.7 ms
    per image in NCHW, 11.6 ms in channels_last on the AMX VM). `model` is not changed:
    channels_last runs on a copy. With under 4 chunks of data or no 4-D weights: NCHW."""
    import copy

    import torch

    order = ["nchw", "channels_last", "nchw", "channels_last"]  # warm-up, then timed
    if len(x) <= (len(order) - 1) * EVAL_BATCH or not _has_4d_weights(model):
        return predict(model, x, probabilities), "nchw"
    nets = {"nchw": model,
            "channels_last": copy.deepcopy(model).to(memory_format=torch.channels_last)}
    outs, times = [], {}
    for i, layout in enumerate(order):
        t0 = time.perf_counter()
        outs.append(predict(nets[layout], x[i * EVAL_BATCH:(i + 1) * EVAL_BATCH],
                            probabilities))
        times[layout] = time.perf_counter() - t0  # the second (warm) chunk's time stays
    best = min(times, key=lambda k: (times[k], k != "nchw"))
    if len(x) > len(order) * EVAL_BATCH:
        outs.append(predict(nets[best], x[len(order) * EVAL_BATCH:], probabilities))
    return torch.cat(outs), best


def _has_4d_weights(model: Any) -> bool:
    return any(p.dim() == 4 for p in model.parameters())


def refusal(model: Any, ctx: Any, *, labels: bool, teacher: bool) -> str | None:
    """Why a recovery pass cannot run on `model` with `ctx`, or None."""
    import torch

    if isinstance(model.obj, torch.jit.ScriptModule):
        return "a TorchScript module cannot be trained here (give the eager model)"
    data = ctx.train if ctx.train is not None else ctx.calibration
    if data is None or len(data) < 2:
        return "no training data (pass --data; at least 2 samples)"
    if labels and data.y is None:
        return "finetune needs labelled data; this data has no labels: use distill, which " \
               "learns from the original model's outputs"
    if labels and ctx.validation is not None and ctx.validation.y is None:
        return "finetune needs labelled validation data (ctx.validation has no labels)"
    ref = ctx.reference
    if teacher and (ref is None or ref.format != "torch" or
                    isinstance(ref.obj, torch.jit.ScriptModule)):
        return "distillation needs the original model as an eager torch module (ctx.reference)"
    return None


def details(log: Log, task: Task, train: Any, val: Any) -> dict[str, Any]:
    """The pass details of a finished recovery."""
    return {**log.report(task.metric_name), "optimizer": "Adam",
            "train_samples": len(train), "val_samples": len(val),
            "summary": f"{log.steps} steps in {log.seconds:.1f} s ({log.stop}); "
                       f"{task.metric_name} {log.history[0]['value']:.4f} → "
                       f"{max(h['value'] for h in log.history):.4f}"}
