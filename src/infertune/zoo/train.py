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
        epochs: passes over `sample:train`. batch_size: images per step.
        lr: peak learning rate. weight_decay: AdamW decoupled decay.
        shift: augmentation: random translation of up to ±shift pixels (zero fill).
    """

    epochs: int
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    shift: int = 2


# Measured here (2 threads, seed 0): ref-small 98.6% val top-1 in ~20-30 s (seeds 0-3 gave
# 98.3-99.1%); ref-large 99.3% in ~55-70 s. One thread instead of two: 98.5%, other weights.
RECIPES: dict[str, Recipe] = {
    "ref-small": Recipe(epochs=20),
    "ref-large": Recipe(epochs=12),
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


def load_parts(preprocess: str, input_size: tuple[int, int]):
    """(train, val) Datasets: the fixed parts of the built-in set at the model's input."""
    from ..data import load_dataset

    shape = (3, *input_size)
    return (load_dataset("sample:train", input_shape=shape, preprocess=preprocess),
            load_dataset("sample:val", input_shape=shape, preprocess=preprocess))


def fit(net, train, recipe: Recipe, generator, budget_s: float, progress) -> dict[str, Any]:
    """Trains `net` in place; returns epochs done, last-epoch loss/accuracy, stopped_early."""
    import torch
    import torch.nn.functional as F

    x_all, y_all = torch.from_numpy(train.x), torch.from_numpy(train.y)
    steps = -(-len(x_all) // recipe.batch_size)
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr,
                                                   total_steps=recipe.epochs * steps)
    start, stats = time.perf_counter(), {"epochs_done": 0, "stopped_early": False}
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(x_all), generator=generator)
        loss_sum, correct = 0.0, 0
        for i in range(steps):
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


class EpochProgress:
    """A rich progress bar on stderr: one task per run, advanced per step, loss shown."""

    def __init__(self, name: str, epochs: int, steps: int, enabled: bool = True):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._steps = steps
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                             TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
                             console=Console(stderr=True), disable=not enabled, transient=False)
        self._task = self._bar.add_task(f"training {name}", total=epochs * steps, epoch=1,
                                        epochs=epochs, loss=float("nan"))

    def __enter__(self) -> "EpochProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def advance(self, epoch: int, loss: float) -> None:
        self._bar.update(self._task, advance=1, epoch=epoch + 1, loss=loss)


def trainable(name: str):
    """The zoo entry of a trainable reference model, or a ConfigError naming them."""
    from . import ZOO

    if name not in RECIPES:
        raise ConfigError(f"only the reference models can be trained, not {name!r}; "
                          f"choose one of: {', '.join(RECIPES)}")
    return ZOO.get(name)


def train_reference(name: str, out_dir: str | Path | None = None, *, epochs: int | None = None,
                    seed: int = 0, threads: int = TRAIN_THREADS, time_budget_s: float = 900.0,
                    progress: bool = True) -> dict[str, Any]:
    """Trains a reference model and writes NAME.cfg, NAME.weights and NAME.json to `out_dir`.

    Args:
        name: "ref-small" or "ref-large".
        out_dir: output folder; default `default_out_dir()` (never the shipped weights).
        epochs: instead of the recipe's (a shorter run for tests).
        seed: seeds initialisation, shuffling and augmentation.
        threads: torch threads (part of what makes the run repeatable; module docstring).
        time_budget_s: stop after the epoch that passes this (recorded as stopped_early).
        progress: show a progress bar on stderr.

    Returns:
        The record written to NAME.json, plus `files` (the three paths).
    """
    import torch

    entry = trainable(name)
    recipe = RECIPES[name] if epochs is None else replace(RECIPES[name], epochs=int(epochs))
    if recipe.epochs < 1 or threads < 1:
        raise ConfigError("epochs and threads must be at least 1")
    train, val = load_parts(entry.preprocess, entry.input_size)
    start = time.perf_counter()
    with deterministic(seed, threads):
        net = entry.build(entry.num_classes, entry.input_size)
        generator = torch.Generator().manual_seed(seed)
        steps = -(-len(train) // recipe.batch_size)
        with EpochProgress(name, recipe.epochs, steps, enabled=progress) as bar:
            stats = fit(net, train, recipe, generator, time_budget_s, bar)
        to_darknet_bn(net)
        logits = predict(net, val.x)
    seconds = time.perf_counter() - start
    record = make_record(entry, net, recipe, stats, val, logits, seed=seed, threads=threads,
                         seconds=seconds, train_description=train.description)
    files = write_outputs(Path(out_dir) if out_dir else default_out_dir(), entry, net, record)
    return {**record, "files": files}


def make_record(entry, net, recipe: Recipe, stats: dict, val, logits, *, seed: int,
                threads: int, seconds: float, train_description: str) -> dict[str, Any]:
    """The JSON record of a training run (see `train_reference`)."""
    import numpy as np
    import torch

    from ..metrics import classification_report

    report = classification_report(logits, val.y, class_names=val.class_names)
    keep = ("n", "top1", "top1_ci", "top5", "top5_ci", "f1_macro", "f1_macro_ci")
    return {
        "name": entry.name, "input": [3, *entry.input_size], "num_classes": entry.num_classes,
        "val": {"data": "sample:val", "description": val.description,
                **{k: report[k] for k in keep}},
        "train": {"data": "sample:train", "description": train_description,
                  **{k: stats[k] for k in ("train_loss", "train_top1") if k in stats},
                  "note": "last epoch, running over augmented batches"},
        "macs": int(sum(net.macs)), "params": int(sum(p.numel() for p in net.parameters())),
        "recipe": {**asdict(recipe), "optimizer": "AdamW, one-cycle learning rate",
                   "loss": "cross-entropy on logits"},
        "seed": seed, "threads": threads, "epochs_done": stats["epochs_done"],
        "stopped_early": stats["stopped_early"], "train_seconds": round(seconds, 2),
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
