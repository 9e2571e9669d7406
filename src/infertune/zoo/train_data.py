"""What the reference models train and validate on, epoch by epoch (used by train.py).

Two kinds of built-in training data:
* `sample` (ref-small, ref-large): the fixed `sample:train` digits, the same images every
  epoch (train.py shifts them by a few pixels as augmentation);
* `clutter` (ref-clutter): *new scenes every epoch* — the `clutter:train` digits placed again
  at another scale and place, among other fragments, on other crops of the training photos
  (`infertune.data.clutter`). 4,000 digits seen in one fixed scene each would be memorised;
  seen in a new scene each epoch, they teach the net to find a digit anywhere. The scenes of
  epoch e come from seed `scene_seed(seed, e)`, never the seed of the built-in parts, so the
  run stays deterministic.

Warm-up on smaller canvases (clutter only): the network is fully convolutional up to its
global average pool, so a filter sees a digit of a given pixel size the same way on a 64×64
canvas as on a 128×128 one. The first `warmup_epochs` epochs therefore render scenes on a
`warmup_canvas`-pixel canvas (same digit sizes, fewer fragments around them), which costs
(warmup_canvas/128)² of a full epoch; the last epochs run at the model's input size, where it
learns to ignore the larger field of clutter and its batch-norm statistics become those of
128-px scenes. Those full-size epochs may use a stratified subset of the digits
(`full_size_digits`): on a shared 2-core machine one full epoch at 128 px costs as much as
~4 warm-up epochs, and at the end of the one-cycle schedule the learning rate is small.
The validation is always at the input size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

# train.py's Recipe.data values and the built-in parts each trains and validates on
PARTS = {"sample": ("sample:train", "sample:val"), "clutter": ("clutter:train", "clutter:val")}


@dataclass
class TrainData:
    """Per-epoch training arrays and the fixed validation set of one run.

    Attributes:
        epoch: epoch index → (float32 N×3×h×w inputs, int64 labels).
        sizes: N of each epoch (known up front: the learning-rate schedule counts the steps).
        val: the validation Dataset (at the model's input size).
        description: one line for the record: what the epochs are made of.
    """

    epoch: Callable[[int], tuple[np.ndarray, np.ndarray]]
    sizes: list[int]
    val: Any
    description: str


def scene_seed(seed: int, epoch: int) -> int:
    """Seed of epoch `epoch`'s scenes: distinct per (seed, epoch), never the built-in parts' 0."""
    return 1000 * (seed + 1) + epoch


def canvas_of(recipe, epoch: int, input_size: tuple[int, int]) -> int:
    """The canvas side of an epoch: the warm-up canvas first, then the model's input size."""
    warmup = min(recipe.warmup_epochs, recipe.epochs - 1)  # the last epoch is at full size
    return recipe.warmup_canvas if epoch < warmup else input_size[0]


def load_train_data(recipe, entry, limit: int | None, seed: int) -> TrainData:
    """The training and validation data of `recipe` for zoo `entry` (at most `limit` each);
    `seed` is the run's seed (it seeds the clutter scenes of each epoch)."""
    from ..data import load_dataset

    train_spec, val_spec = PARTS[recipe.data]
    shape = (3, *entry.input_size)
    val = load_dataset(val_spec, input_shape=shape, preprocess=entry.preprocess, limit=limit)
    if recipe.data == "sample":
        train = load_dataset(train_spec, input_shape=shape, preprocess=entry.preprocess,
                             limit=limit)
        return TrainData(lambda epoch: (train.x, train.y), [len(train)] * recipe.epochs, val,
                         train.description)
    return _scene_data(recipe, entry, limit, val, seed)


def _scene_data(recipe, entry, limit: int | None, val, seed: int) -> TrainData:
    from ..data import clutter
    from ..data.dataset import choose
    from ..data.preprocess import apply_preprocess, resolve_preprocess

    source = clutter.part_source("train")
    rows = choose(len(source.labels), limit or len(source.labels), source.labels, 0)
    n_full = min(len(rows), recipe.full_size_digits or len(rows))
    full_rows = rows[choose(len(rows), n_full, source.labels[rows], 0)]
    pre = resolve_preprocess(entry.preprocess)
    warmup = min(recipe.warmup_epochs, recipe.epochs - 1)

    def epoch(e: int) -> tuple[np.ndarray, np.ndarray]:
        side = canvas_of(recipe, e, entry.input_size)
        chosen = rows if e < warmup else full_rows
        x, y, _ = clutter.scenes("train", scene_seed(seed, e), side, chosen)
        return apply_preprocess(x, pre, (side, side)), y

    sizes = [len(rows) if e < warmup else n_full for e in range(recipe.epochs)]
    return TrainData(epoch, sizes, val,
                     f"clutter:train digits ({len(rows)}), new scenes every epoch "
                     f"(seed 1000·(seed+1)+epoch); the first {warmup} epoch(s) on a "
                     f"{recipe.warmup_canvas}-px canvas, then {entry.input_size[0]} px on "
                     f"{n_full} of the digits (stratified, seed 0)")
