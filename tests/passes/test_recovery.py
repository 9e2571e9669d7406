"""finetune / distill: they recover what they should on tiny tasks built here, are
deterministic with a seed, stop early on a plateau, refuse what they cannot do, leave the
input untouched and return an eval-mode model.

The tasks are chosen so that the asserted margins are wide: a separable 4-class problem that
a random net gets ~25% right and 150 Adam steps get > 90% right; a student that starts from
the teacher's weights with large noise (KL ~0.1-1) and ends far closer (< half).
"""
from __future__ import annotations

import copy

import pytest
import torch
from recovery_helpers import dataset, handle, kl_to_teacher, net, noisy_copy, teacher_net

from infertune.passes import PassContext, apply_passes


def ctx(tmp_path, train, reference=None, seed=0) -> PassContext:
    return PassContext(workdir=tmp_path, train=train, reference=reference, seed=seed, threads=1)


def accuracy(model, ds) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(ds.x)).argmax(1).numpy() == ds.y).mean())


def test_finetune_raises_accuracy_and_leaves_the_input_alone(tmp_path):
    h = handle(net(0))
    before = copy.deepcopy(h.obj.state_dict())
    test = dataset(400, True, seed=1)
    acc0 = accuracy(h.obj, test)
    out, reports = apply_passes(h, [("finetune", {"steps": 150, "lr": 1e-2, "val_every": 25,
                                                  "quiet": True})],
                                ctx(tmp_path, dataset(400, True)))
    r = reports[0]
    assert r["applied"] and r["val_metric"] == "top1"
    acc1 = accuracy(out.obj, test)
    assert acc0 < 0.5 and acc1 > 0.9, (acc0, acc1)
    assert r["val_metric_after"] > r["val_metric_before"]
    assert r["steps_run"] >= r["best_step"] > 0 and r["seconds"] > 0
    assert not out.obj.training and not out.obj.bn.training
    assert all(torch.equal(v, h.obj.state_dict()[k]) for k, v in before.items())
    # BatchNorm's running statistics were updated in train mode (they start at 0 / 1)
    assert not torch.equal(out.obj.bn.running_mean, before["bn.running_mean"])


def test_finetune_refuses_unlabelled_data(tmp_path):
    h = handle(net(0))
    out, reports = apply_passes(h, [("finetune", {"steps": 5, "quiet": True})],
                                ctx(tmp_path, dataset(50, False)))
    assert not reports[0]["applied"] and "distill" in reports[0]["reason"]
    assert out is h


def test_distill_lowers_kl_to_the_teacher_without_labels(tmp_path):
    teacher = teacher_net()
    student = handle(noisy_copy(teacher.obj, 1.5, seed=7))
    x_test = torch.from_numpy(dataset(300, False, seed=2).x)
    kl0 = kl_to_teacher(student.obj, teacher.obj, x_test)
    out, reports = apply_passes(student, [("distill", {"steps": 150, "lr": 3e-3,
                                                       "val_every": 25, "quiet": True})],
                                ctx(tmp_path, dataset(300, False), reference=teacher))
    r = reports[0]
    assert r["applied"] and r["val_metric"] == "teacher_agreement"
    kl1 = kl_to_teacher(out.obj, teacher.obj, x_test)
    assert kl0 > 0.05 and kl1 < 0.5 * kl0, (kl0, kl1)
    assert r["loss_last10"] < r["loss_first10"]


def test_distill_needs_a_torch_teacher(tmp_path):
    h = handle(net(0))
    _, reports = apply_passes(h, [("distill", {"steps": 5, "quiet": True})],
                              ctx(tmp_path, dataset(50, True)))
    assert not reports[0]["applied"] and "original model" in reports[0]["reason"]


def test_same_seed_same_weights(tmp_path):
    teacher = teacher_net()
    student = handle(noisy_copy(teacher.obj, 1.0, seed=3))
    step = ("distill", {"steps": 20, "lr": 1e-3, "val_every": 10, "quiet": True})
    states = []
    for run in range(2):
        out, _ = apply_passes(student, [step], ctx(tmp_path / str(run), dataset(100, True),
                                                   reference=teacher, seed=5))
        states.append(out.obj.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    out, _ = apply_passes(student, [step], ctx(tmp_path / "other", dataset(100, True),
                                               reference=teacher, seed=6))
    assert not all(torch.equal(states[0][k], out.obj.state_dict()[k]) for k in states[0])


def test_early_stop_on_a_plateau_restores_the_best_weights(tmp_path):
    # lr 1e-12: the weights barely move, so the validation metric never improves: the loop
    # must stop after `patience` validations and return the weights from before training
    h = handle(net(0))
    out, reports = apply_passes(h, [("finetune", {"steps": 1000, "lr": 1e-12, "val_every": 5,
                                                  "patience": 3, "quiet": True})],
                                ctx(tmp_path, dataset(200, True)))
    r = reports[0]
    assert r["stop_reason"] == "early stop" and r["steps_run"] == 15
    assert r["best_step"] == 0 and r["val_metric_after"] == r["val_metric_before"]
    params = dict(out.obj.named_parameters())
    assert all(torch.equal(p, params[k]) for k, p in h.obj.named_parameters())


def test_seconds_budget_stops_by_time(tmp_path):
    h = handle(net(0))
    _, reports = apply_passes(h, [("finetune", {"seconds": 0.3, "patience": 0, "quiet": True})],
                              ctx(tmp_path, dataset(100, True)))
    r = reports[0]
    assert r["stop_reason"] == "budget" and r["seconds"] >= 0.3


@pytest.mark.parametrize("options,match", [({"steps": "0"}, "steps"),
                                           ({"temperature": "0"}, "temperature"),
                                           ({"alpha": "2"}, "alpha")])
def test_config_errors(options, match):
    from infertune.errors import ConfigError
    from infertune.passes import PASSES
    from infertune.passes.base import config_from_options

    with pytest.raises(ConfigError, match=match):
        config_from_options(PASSES.get("distill"), options)


def test_apply_cli_low_rank_then_distill_on_ref_small(tmp_path, capsys, monkeypatch):
    import json

    from infertune.cli import main

    monkeypatch.setenv("INFERTUNE_QUIET", "1")
    out = tmp_path / "x.onnx"
    code = main(["apply", "ref-small", "--pass", "low_rank:mac_reduction=0.5",
                 "--pass", "distill:steps=6,val_every=3,lr=1e-3", "--data", "sample",
                 "--train-size", "128", "--calib-size", "16", "--threads", "1",
                 "--runtime", "onnxruntime", "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code in (0, None) and out.exists()
    low, distill = result["passes"]
    assert low["applied"] and distill["applied"] and distill["steps_run"] == 6
    # 128 samples of sample:train: 13 held out for validation (10%), 115 trained on
    assert distill["train_samples"] == 115 and distill["val_samples"] == 13
    size = result["size"]
    assert size["after"]["macs"] < size["before"]["macs"]
    assert size["after"]["macs"] == low["macs_after"]
    assert result["recovery"][0]["val_metric"] == "top1"


def test_one_runs_distillations_share_the_teachers_outputs(tmp_path, monkeypatch):
    """Two students distilled in two pipelines of one run (one cache_dir): the teacher's
    outputs on the training images are computed once; loaded from the cache they train
    exactly the weights that computing them again trains (no cache)."""
    from infertune.passes import _teacher_cache

    import time

    calls, reports = [], []
    real = _teacher_cache.predict_fastest
    # computing the teacher's outputs is made to take ≥ 0.5 s, so that the pass's record of
    # that time (`teacher_s`, read by the search's time planning) can be told from a cache
    # load (a 100 × 4 array: milliseconds)
    monkeypatch.setattr(_teacher_cache, "predict_fastest",
                        lambda *a: calls.append(1) or time.sleep(0.5) or real(*a))
    teacher, data = teacher_net(), dataset(100, True)
    step = ("distill", {"steps": 20, "lr": 1e-3, "val_every": 10, "quiet": True})

    def run(student, name, cache):
        c = PassContext(workdir=tmp_path / name, train=data, reference=teacher, seed=5,
                        threads=1, cache_dir=cache)
        out, reps = apply_passes(student, [step], c)
        reports.append(reps[0])
        return out.obj.state_dict()

    students = [handle(noisy_copy(teacher.obj, 1.0, seed=s)) for s in (3, 4)]
    cached = [run(s, f"run{i}", tmp_path / "cache") for i, s in enumerate(students)]
    assert len(calls) == 1
    assert reports[0]["teacher_s"] >= 0.5 > reports[1]["teacher_s"]
    assert len(list((tmp_path / "cache" / "teacher").glob("*.npy"))) == 1
    fresh = run(students[1], "fresh", None)
    assert len(calls) == 2
    assert all(torch.equal(cached[1][k], fresh[k]) for k in fresh)
