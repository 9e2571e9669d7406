"""The run's trained-weights cache: a training pass with the same starting point, options,
seed and data trains once; later pipelines load the published weights (and nothing else)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from infertune.data import Dataset
from infertune.data.preprocess import resolve_preprocess
from infertune.passes import PassContext, apply_passes
from infertune.types import InputSpec, ModelHandle


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()


def _handle(net: torch.nn.Module) -> ModelHandle:
    return ModelHandle(format="torch", obj=net, input_spec=InputSpec(shape=("batch", 3, 8, 8)),
                       name="tiny", source="test")


def _data(seed: int = 0, n: int = 96) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 8, 8)).astype(np.float32)
    return Dataset(x=x, y=rng.integers(0, 4, n), class_names=[], description="random",
                   preprocess=resolve_preprocess("none"))


def _ctx(tmp_path, data: Dataset, reference: ModelHandle, cache: bool = True) -> PassContext:
    return PassContext(workdir=tmp_path / "work", calibration=data, reference=reference,
                       seed=0, threads=1, train=data,
                       cache_dir=(tmp_path / "cache") if cache else None)


def _state(handle: ModelHandle) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in handle.obj.state_dict().items()}


STEPS = [("prune_channels", {"ratio": 0.5, "round_to": 2}),
         ("distill", {"steps": 3, "val_every": 1, "quiet": True})]


def test_the_second_pipeline_loads_the_weights_the_first_trained(tmp_path, monkeypatch):
    ref = _handle(_net())
    data = _data()
    first, reports = apply_passes(ref, STEPS, _ctx(tmp_path, data, ref))
    assert "cache" not in reports[-1] and reports[-1]["steps_run"] == 3
    assert len(list((tmp_path / "cache" / "trained").glob("*.pt"))) == 1

    from infertune.passes import recovery

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although the weights were cached")

    monkeypatch.setattr(recovery, "train", no_training)
    second, reports2 = apply_passes(ref, STEPS, _ctx(tmp_path, data, ref))
    assert "cache" in reports2[-1] and reports2[-1]["steps_run"] == 3  # the training's record
    assert second.meta.get("recovered_by") == "distill"
    a, b = _state(first), _state(second)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.from_numpy(data.x[:8])
    assert torch.equal(first.obj(x), second.obj(x))


@pytest.mark.parametrize("change", ["data", "options", "weights"])
def test_a_different_starting_point_trains_anew(tmp_path, change):
    ref = _handle(_net())
    data = _data()
    apply_passes(ref, STEPS, _ctx(tmp_path, data, ref))
    steps, start = STEPS, ref
    if change == "data":
        data = _data(seed=1)
    elif change == "options":
        steps = [STEPS[0], ("distill", {"steps": 4, "val_every": 1, "quiet": True})]
    else:
        net = _net()
        with torch.no_grad():
            net[0].weight.mul_(1.5)
        start = _handle(net)
    _, reports = apply_passes(start, steps, _ctx(tmp_path, data, ref))
    assert "cache" not in reports[-1]
    assert len(list((tmp_path / "cache" / "trained").glob("*.pt"))) == 2


def test_no_cache_without_a_run_cache_and_a_corrupt_file_is_ignored(tmp_path):
    ref = _handle(_net())
    data = _data()
    _, reports = apply_passes(ref, STEPS, _ctx(tmp_path, data, ref, cache=False))
    assert not (tmp_path / "cache").exists() and "cache" not in reports[-1]
    apply_passes(ref, STEPS, _ctx(tmp_path, data, ref))
    (weights,) = (tmp_path / "cache" / "trained").glob("*.pt")
    weights.write_bytes(b"not a state dict")
    _, reports = apply_passes(ref, STEPS, _ctx(tmp_path, data, ref))
    assert "cache" not in reports[-1] and reports[-1]["steps_run"] == 3


def test_a_continued_recovery_loads_the_first_and_trains_only_the_second(tmp_path):
    """search.space.continued's recipe (a second distill after the first): the first step's
    weights come from the cache the shorter pipeline published; the second starts from them."""
    ref = _handle(_net())
    data = _data()
    first, _ = apply_passes(ref, STEPS, _ctx(tmp_path, data, ref))
    more = STEPS + [("distill", {"steps": 2, "val_every": 1, "quiet": True})]
    longer, reports = apply_passes(ref, more, _ctx(tmp_path, data, ref))
    assert "cache" in reports[1] and "cache" not in reports[2]
    assert reports[2]["steps_run"] == 2
    # the continuation's first validation is the first recovery's best (the weights it kept)
    assert reports[2]["val_history"][0]["value"] == pytest.approx(
        max(h["value"] for h in reports[1]["val_history"]), abs=1e-6)
    x = torch.from_numpy(data.x[:8])
    assert longer.obj(x).shape == first.obj(x).shape
