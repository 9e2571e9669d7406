"""Deterministic CPU training of the reference models (`infertune zoo train NAME`).

What makes a run repeatable, and its limits:
* Every random draw comes from `seed`: weight initialisation (torch's RNG, forked so the
  caller's state is untouched), the epoch shuffles and the augmentation shifts (one seeded
  `torch.Generator`). No data-loader workers, no dropout.
* `torch.use_deterministic_algorithms(True)` and a fixed thread count (`TRAIN_THREADS` = 2):
  oneDNN's CPU kernels split work (and so float sums) by thread, so the same machine type with
  the same thread count gives bit-identical weights run after run, while another thread count
  or another CPU (AVX2 vs AVX-512 kernels) changes the last bits of early updates, which SGD
  then amplifies. Retraining elsewhere reproduces the *accuracy* within a point, not the
  weights; that is the tolerance the tests use.
* The validation part (`sample:val`) is never seen during training: no early stopping and no
  model selection on it. It is evaluated once, at the end, for the record.

Batch norm: our Darknet layers always normalise with running statistics (inference
semantics), so training runs the same convs through `F.batch_norm` in training mode
(eps 1e-5, momentum 0.1) and the running variance is then converted to Darknet's CPU
convention (x − mean)/(sqrt(var) + 1e-6), so the saved network computes what was trained.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError

TRAIN_THREADS = 2
TRAIN_BN_EPS = 1e-5
DARKNET_CPU_EPS = 1e-6  # Darknet's CPU batch norm: (x - mean) / (sqrt(var) + 1e-6)


@dataclass(frozen=True)
class Recipe:
    """How one reference model is trained (AdamW with a one-cycle learning rate).

    Attributes:
        epochs: passes over the training digits. batch_size: images per step.
        lr: peak learning rate. weight_decay: AdamW decoupled decay.
        shift: augmentation: random translation of up to ±shift pixels (zero fill).
        data: the built-in set: "sample" (trains on sample:train, validated on sample:val) or
            "clutter" (clutter:train digits in new scenes every epoch, validated on
            clutter:val; train_data.py).
        warmup_epochs, warmup_canvas: clutter only: the first epochs on scenes of this side
            (the last epoch is always at the input size; train_data.py says why).
        full_size_digits: clutter only: the epochs at the input size use this many of the
            digits (stratified; 0: all).
        scenes: digits-det only: new detection scenes rendered per epoch
            (train_detector.py trains ref-detector on them).
        time_budget_s: stop after the epoch that passes this (recorded as stopped_early).
    """

    epochs: int
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    shift: int = 2
    data: str = "sample"
    warmup_epochs: int = 0
    warmup_canvas: int = 0
    full_size_digits: int = 0
    scenes: int = 0
    time_budget_s: float = 900.0


# Measured here (2 threads, seed 0): ref-small 98.6% val top-1 in ~20-30 s (seeds 0-3 gave
# 98.3-99.1%); ref-large 99.3% in ~55-70 s. One thread instead of two: 98.5%, other weights.
# ref-clutter (2 threads, seed 0, 2-core AMD EPYC shared with other jobs): 90.7% clutter:val
# top-1 [88.7, 92.4] in 1553 s; a 5-epoch recipe (3 warm-up, 2 at 128 px) reached only 80.1%
# in 573 s, with the training loss still falling.
RECIPES: dict[str, Recipe] = {
    "ref-small": Recipe(epochs=20),
    "ref-large": Recipe(epochs=12),
    "ref-clutter": Recipe(epochs=9, batch_size=32, shift=0, data="clutter", warmup_epochs=5,
                          warmup_canvas=64, full_size_digits=3000, time_budget_s=4 * 3600.0),
    "ref-detector": Recipe(epochs=16, batch_size=32, lr=3e-3, shift=0, data="digits-det",
                           warmup_epochs=6, warmup_canvas=80, scenes=2000,
                           time_budget_s=4 * 3600.0),
}


def default_out_dir() -> Path:
    """Where `zoo train` writes by default: a user folder, never the shipped weights."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join("~", ".local", "share")
    return Path(base).expanduser() / "infertune" / "zoo"


@contextlib.contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded RNG, deterministic algorithms and a fixed thread count, restored afterwards."""
    import torch

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
            torch.set_num_threads(was_threads)


def train_forward(net, x):
    """DarknetNet forward with batch norm in training mode (batch statistics).

    Only chains of layers are supported (no route/shortcut): the reference models are.
    """
    import torch.nn.functional as F

    for layer in net.layers:
        bn = getattr(layer, "bn", None)
        if bn is None:
            x = layer(x)
            continue
        y = layer.conv(x)
        y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                         training=True, momentum=0.1, eps=TRAIN_BN_EPS)
        x = layer.act(y)
    return x.flatten(1)


def to_darknet_bn(net) -> None:
    """Rewrites running variances so Darknet's CPU batch norm equals the trained one.

    Trained: (x − m)/sqrt(v + 1e-5). Darknet CPU: (x − m)/(sqrt(v') + 1e-6), so
    v' = (sqrt(v + 1e-5) − 1e-6)².
    """
    import torch

    with torch.no_grad():
        for layer in net.layers:
            bn = getattr(layer, "bn", None)
            if bn is not None:
                std = torch.sqrt(bn.running_var + TRAIN_BN_EPS) - DARKNET_CPU_EPS
                bn.running_var.copy_(std * std)


def shifted(x, shift: int, generator):
    """Each image translated by its own random (dy, dx) in [−shift, shift], zero-filled."""
    import torch
    import torch.nn.functional as F

    if shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=generator)
    rows = offsets[:, 0, None] + torch.arange(h)[None, :]  # n × h
    cols = offsets[:, 1, None] + torch.arange(w)[None, :]  # n × w
    index = torch.arange(n)[:, None, None, None]
    chan = torch.arange(x.shape[1])[None, :, None, None]
    return padded[index, chan, rows[:, None, :, None], cols[:, None, None, :]]


def predict(net, x, batch_size: int = 256):
    """Eval-mode logits of a float32 N×C×H×W numpy array, as a float32 numpy array."""
    import numpy as np
    import torch

    outs = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            outs.append(net(torch.from_numpy(x[start:start + batch_size])).numpy())
    return np.concatenate(outs).astype(np.float32)


def fit(net, data, recipe: Recipe, generator, budget_s: float, progress) -> dict[str, Any]:
    """Trains `net` in place on `data` (a train_data.TrainData); returns epochs done,
    last-epoch loss/accuracy, stopped_early."""
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr,
                                                   total_steps=total_steps(data, recipe))
    start, stats = time.perf_counter(), {"epochs_done": 0, "stopped_early": False}
    for epoch in range(recipe.epochs):
        progress.doing(epoch, "preparing the epoch's images")
        x_np, y_np = data.epoch(epoch)
        x_all, y_all = torch.from_numpy(x_np), torch.from_numpy(y_np)
        order = torch.randperm(len(x_all), generator=generator)
        loss_sum, correct = 0.0, 0
        for i in range(-(-len(x_all) // recipe.batch_size)):
            rows = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x, y = shifted(x_all[rows], recipe.shift, generator), y_all[rows]
            logits = train_forward(net, x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(rows)
            correct += int((logits.argmax(1) == y).sum())
            progress.advance(epoch, loss_sum / min((i + 1) * recipe.batch_size, len(x_all)))
        stats.update(epochs_done=epoch + 1, train_loss=loss_sum / len(x_all),
                     train_top1=correct / len(x_all))
        if time.perf_counter() - start > budget_s and epoch + 1 < recipe.epochs:
            stats["stopped_early"] = True
            break
    return stats


def total_steps(data, recipe: Recipe) -> int:
    """Optimizer steps of the whole run (epochs may differ in size: train_data.py)."""
    return sum(-(-n // recipe.batch_size) for n in data.sizes)


class EpochProgress:
    """A rich progress bar on stderr: one task per run, advanced per step, loss shown, with
    the time left estimated from the steps done, and what the run is doing between steps."""

    def __init__(self, name: str, epochs: int, steps: int, enabled: bool = True):
        """`steps`: optimizer steps of the whole run."""
        from rich.console import Console
        from rich.progress import (BarColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._steps = steps
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                             TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
                             TextColumn("left"), TimeRemainingColumn(),
                             TextColumn("{task.fields[doing]}"), console=Console(stderr=True),
                             disable=not enabled, transient=False)
        self._task = self._bar.add_task(f"training {name}", total=steps, epoch=1,
                                        epochs=epochs, loss=float("nan"), doing="")

    def __enter__(self) -> "EpochProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def advance(self, epoch: int, loss: float) -> None:
        self._bar.update(self._task, advance=1, epoch=epoch + 1, loss=loss, doing="")

    def doing(self, epoch: int, what: str) -> None:
        """Shows what happens before the next step (e.g. rendering an epoch's scenes)."""
        self._bar.update(self._task, epoch=epoch + 1, doing=what)


def trainable(name: str):
    """The zoo entry of a trainable reference model, or a ConfigError naming them."""
    from . import ZOO

    if name not in RECIPES:
        raise ConfigError(f"only the reference models can be trained, not {name!r}; "
                          f"choose one of: {', '.join(RECIPES)}")
    return ZOO.get(name)


def train_reference(name: str, out_dir: str | Path | None = None, *, epochs: int | None = None,
                    seed: int = 0, threads: int = TRAIN_THREADS,
                    time_budget_s: float | None = None, limit: int | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Trains a reference model and writes NAME.cfg, NAME.weights and NAME.json to `out_dir`.

    Args:
        name: a key of RECIPES ("ref-small", "ref-large", "ref-clutter").
        out_dir: output folder; default `default_out_dir()` (never the shipped weights).
        epochs: instead of the recipe's (a shorter run for tests).
        seed: seeds initialisation, shuffling and augmentation (and the clutter scenes).
        threads: torch threads (part of what makes the run repeatable; module docstring).
        time_budget_s: instead of the recipe's: stop after the epoch that passes this
            (recorded as stopped_early).
        limit: train and validate on at most this many digits of each part (stratified,
            seed 0): quick runs for tests, not a recipe.
        progress: show a progress bar on stderr.

    Returns:
        The record written to NAME.json, plus `files` (the three paths).
    """
    import torch

    from .train_data import load_train_data

    entry = trainable(name)
    recipe = RECIPES[name] if epochs is None else replace(RECIPES[name], epochs=int(epochs))
    if recipe.epochs < 1 or threads < 1 or (limit is not None and limit < 1):
        raise ConfigError("epochs, threads and limit must be at least 1")
    budget = recipe.time_budget_s if time_budget_s is None else float(time_budget_s)
    if recipe.data == "digits-det":
        from .train_detector import train_detector

        net, record = train_detector(entry, recipe, seed=seed, threads=threads, budget_s=budget,
                                     limit=limit, progress=progress)
        files = write_outputs(Path(out_dir) if out_dir else default_out_dir(), entry, net,
                              record)
        return {**record, "files": files}
    data = load_train_data(recipe, entry, limit, seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    with deterministic(seed, threads):
        net = entry.build(entry.num_classes, entry.input_size)
        generator = torch.Generator().manual_seed(seed)
        with EpochProgress(name, recipe.epochs, total_steps(data, recipe),
                           enabled=progress) as bar:
            stats = fit(net, data, recipe, generator, budget, bar)
        to_darknet_bn(net)
        logits = predict(net, data.val.x)
    seconds = (time.perf_counter() - start, time.process_time() - cpu_start)
    record = make_record(entry, net, recipe, stats, data, logits, seed=seed, threads=threads,
                         seconds=seconds, limit=limit)
    files = write_outputs(Path(out_dir) if out_dir else default_out_dir(), entry, net, record)
    return {**record, "files": files}


def make_record(entry, net, recipe: Recipe, stats: dict, data, logits, *, seed: int,
                threads: int, seconds: tuple[float, float],
                limit: int | None) -> dict[str, Any]:
    """The JSON record of a training run (see `train_reference`).

    `seconds` is (wall, CPU of all threads): on a shared machine the wall time says how busy
    it was, the CPU time what the run costs (about wall × threads on an idle machine).

    `val.correct_bits` is the hex of numpy.packbits(prediction == label) over the validation
    samples in order: a test can check the shipped weights on any subset exactly.
    """
    import numpy as np

    from ..metrics import classification_report
    from .train_data import PARTS

    val = data.val
    report = classification_report(logits, val.y, class_names=val.class_names)
    keep = ("n", "top1", "top1_ci", "top5", "top5_ci", "f1_macro", "f1_macro_ci")
    correct = np.packbits(logits.argmax(1) == val.y).tobytes().hex()
    train_spec, val_spec = PARTS[recipe.data]
    return {
        "name": entry.name, "input": [3, *entry.input_size], "num_classes": entry.num_classes,
        "val": {"data": val_spec, "description": val.description,
                **{k: report[k] for k in keep}, "correct_bits": correct},
        "train": {"data": train_spec, "description": data.description,
                  **{k: stats[k] for k in ("train_loss", "train_top1") if k in stats},
                  "note": "last epoch, running over augmented batches"},
        **run_facts(net, recipe, "cross-entropy on logits", stats, seed=seed, threads=threads,
                    seconds=seconds, limit=limit),
    }


def run_facts(net, recipe: Recipe, loss: str, stats: dict, *, seed: int, threads: int,
              seconds: tuple[float, float], limit: int | None) -> dict[str, Any]:
    """The record's fields every trained reference shares: cost, recipe, what made the run
    repeatable (seed, threads, versions, machine) and how long it took."""
    import numpy as np
    import torch

    return {
        "macs": int(sum(net.macs)), "params": int(sum(p.numel() for p in net.parameters())),
        "recipe": {**asdict(recipe), "optimizer": "AdamW, one-cycle learning rate",
                   "loss": loss},
        "seed": seed, "threads": threads, "limit": limit, "epochs_done": stats["epochs_done"],
        "stopped_early": stats["stopped_early"], "train_seconds": round(seconds[0], 2),
        "train_cpu_seconds": round(seconds[1], 2),
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "machine": machine(),
    }


def machine() -> dict[str, Any]:
    """CPU model, cores and ISA: the kernels (AVX2 vs AVX-512) decide the last bits."""
    from ..measure.fingerprint import cpu_facts

    cpu = cpu_facts()
    return {"arch": platform.machine(), "cpu": cpu["model"], "logical_cores": cpu["logical_cores"],
            "isa": [flag for flag, have in cpu["isa"].items() if have]}


def write_outputs(out: Path, entry, net, record: dict[str, Any]) -> dict[str, str]:
    """Writes NAME.weights, NAME.cfg and NAME.json (each atomically; the record last)."""
    from .._atomic import write_text
    from ..load.darknet import write_weights

    stem = out / entry.name
    paths = {"weights": f"{stem}.weights", "cfg": f"{stem}.cfg", "record": f"{stem}.json"}
    record["weights_bytes"] = write_weights(net, paths["weights"])
    record["weights_sha256"] = hashlib.sha256(Path(paths["weights"]).read_bytes()).hexdigest()
    height, width = entry.input_size
    write_text(paths["cfg"], entry.cfg_text(height, width, entry.num_classes))
    write_text(paths["record"], json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return paths
