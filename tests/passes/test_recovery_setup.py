"""The recovery loop's training setup (recovery.Budget.autocast and .layout): FP32 or BF16
autocast, NCHW or channels_last weights, chosen by option or, for a seconds budget, by a
timed trial that changes nothing in the model."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from recovery_helpers import dataset, handle, net

from infertune.passes import PassContext, apply_passes, recovery
from infertune.passes.qat import QatConfig


def _task(model):
    data = dataset(64, True)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)

    def loss(m, idx):
        return torch.nn.functional.cross_entropy(m(x[idx]), y[idx])

    return recovery.Task(model, loss, lambda m: 0.0, "top1", len(data))


def _native(monkeypatch, native: bool, note: str = "test") -> None:
    from infertune import machine

    monkeypatch.setattr(machine, "native_support", lambda p: {"native": native, "note": note})


def _medians(trial_ms):
    return {k: sorted(v)[len(v) // 2] for k, v in trial_ms.items()}


def test_the_trial_changes_no_weight_buffer_or_layout_and_follows_its_rule(monkeypatch):
    _native(monkeypatch, True)
    model = net(0).train()
    before = copy.deepcopy(model.state_dict())
    got = recovery._choose_setup(_task(model), recovery.Budget(seconds=60.0), seed=0)
    assert set(got["trial_ms"]) == {"fp32/nchw", "fp32/channels_last", "bf16/channels_last"}
    assert [len(v) for v in got["trial_ms"].values()] == [recovery.SETUP_TRIAL] * 3
    assert "timed trial" in got["why"]
    state = model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters())
    assert all(p.is_contiguous() for p in model.parameters())
    # The choice follows the rule from the recorded medians (rounded to 0.01 ms: ±0.02).
    med = _medians(got["trial_ms"])
    fp32 = "fp32/nchw"
    if med["fp32/channels_last"] <= (1 - recovery.LAYOUT_MARGIN) * med["fp32/nchw"] - 0.02:
        fp32 = "fp32/channels_last"
    bf16_wins = med["bf16/channels_last"] <= (1 - recovery.AUTOCAST_MARGIN) * med[fp32]
    expected = "bf16/channels_last" if bf16_wins else fp32
    near = abs(med["bf16/channels_last"] - (1 - recovery.AUTOCAST_MARGIN) * med[fp32]) < 0.03
    # the layout rule's boundary too: the code compares unrounded medians
    near |= abs(med["fp32/channels_last"] - (1 - recovery.LAYOUT_MARGIN) * med["fp32/nchw"]) < 0.03
    if not near:
        assert f"{got['autocast']}/{got['layout']}" == expected


def test_a_short_budget_cuts_the_trial_to_one_round(monkeypatch):
    _native(monkeypatch, False)
    got = recovery._choose_setup(_task(net(0)), recovery.Budget(seconds=1e-4), seed=0)
    assert set(got["trial_ms"]) == {"fp32/nchw", "fp32/channels_last"}
    assert [len(v) for v in got["trial_ms"].values()] == [1, 1]
    assert got["autocast"] == "fp32" and got["why"].endswith("no BF16 trial: test")


def test_no_trial_for_options_steps_budgets_or_models_without_4d_weights(monkeypatch):
    _native(monkeypatch, False, "no avx512_bf16 or amx_bf16")
    task = _task(net(0))
    fixed = recovery._choose_setup(task, recovery.Budget(seconds=5.0, layout="nchw"), 0)
    assert fixed == {"autocast": "fp32", "layout": "nchw",
                     "why": "the options; no BF16 trial: no avx512_bf16 or amx_bf16"}
    _native(monkeypatch, True)
    steps = recovery._choose_setup(task, recovery.Budget(steps=5), 0)
    assert (steps["autocast"], steps["layout"]) == ("fp32", "nchw") and "steps" in steps["why"]
    chosen = recovery._choose_setup(
        task, recovery.Budget(steps=5, autocast="bf16", layout="channels_last"), 0)
    assert (chosen["autocast"], chosen["layout"]) == ("bf16", "channels_last")
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(
        dataset(1, True).x.shape[1:])), 4))
    only = recovery._choose_setup(_task(linear), recovery.Budget(seconds=5.0), 0)
    assert only["layout"] == "nchw" and set(only["trial_ms"]) == {"fp32/nchw", "bf16/nchw"}
    for bad in ({"autocast": "fp16"}, {"layout": "nhwc"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            recovery.Budget(**bad)
    assert (QatConfig().autocast, QatConfig().layout) == ("fp32", "nchw")


def test_bf16_channels_last_trains_reports_it_and_returns_the_default_layout(tmp_path):
    # A BF16 step computes the forward in bfloat16 (8 bits of mantissa): the first steps'
    # loss differs from FP32's by far less than the loss itself (tolerance 5% of it), and
    # 150 steps still learn the separable task (> 0.85 on held-out samples).
    ctx = PassContext(workdir=tmp_path, train=dataset(400, True), seed=0, threads=1)
    outs = {}
    for arith, layout in (("fp32", "nchw"), ("bf16", "channels_last")):
        out, reports = apply_passes(handle(net(0)), [("finetune", {
            "steps": 150, "lr": 1e-2, "val_every": 50, "quiet": True, "autocast": arith,
            "layout": layout})], ctx)
        outs[arith] = (out, reports[0])
    fp32, bf16 = outs["fp32"][1], outs["bf16"][1]
    assert (bf16["training_setup"]["autocast"], bf16["training_setup"]["layout"]) == \
        ("bf16", "channels_last")
    assert bf16["loss_first10"] == pytest.approx(fp32["loss_first10"], rel=0.05)
    from infertune.cli.apply import recovery_lines
    from infertune.commands.apply import recovery_summary

    line = recovery_lines(recovery_summary([{"pass": "finetune", **bf16}]))[0]
    assert line.startswith("finetune: validation top1 ") and \
        "150 steps" in line and "bf16/channels_last, budget)" in line
    model = outs["bf16"][0].obj
    assert all(p.is_contiguous() for p in model.parameters())
    test = dataset(300, True, seed=3)
    with torch.no_grad():
        pred = model(torch.from_numpy(test.x)).argmax(1).numpy()
    assert float(np.mean(pred == test.y)) > 0.85


def test_predict_fastest_gives_predicts_logits_in_either_layout_and_keeps_the_model():
    # FP32 in both layouts: the same products summed in another order (tolerance 1e-4
    # absolute on logits of order 1).
    model = net(0)
    x = dataset(5 * recovery.EVAL_BATCH + 3, False).x
    before = copy.deepcopy(model.state_dict())
    got, layout = recovery.predict_fastest(model, x, probabilities=False)
    want = recovery.predict(model, x, probabilities=False)
    assert layout in ("nchw", "channels_last") and got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-4)
    assert all(p.is_contiguous() for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    small, small_layout = recovery.predict_fastest(model, x[:10], probabilities=False)
    assert small_layout == "nchw" and torch.allclose(small, want[:10], atol=1e-6)


def test_a_channels_last_model_comes_back_channels_last(tmp_path):
    ctx = PassContext(workdir=tmp_path, train=dataset(200, True), seed=0, threads=1)
    model = net(0).to(memory_format=torch.channels_last)
    out, reports = apply_passes(handle(model), [("finetune", {
        "steps": 5, "val_every": 5, "quiet": True, "autocast": "fp32", "layout": "nchw"})], ctx)
    assert reports[0]["training_setup"]["layout"] == "nchw"
    four = [p for p in out.obj.parameters() if p.dim() == 4]
    assert four and all(p.is_contiguous(memory_format=torch.channels_last) for p in four)
    assert recovery._layout_of(out.obj) == "channels_last"
    assert recovery._layout_of(net(0)) == "nchw"


def test_the_report_shows_each_training_step_as_its_pass_recorded_it(tmp_path):
    # The real producer: a finetune step and a cached rerun of it (the run's trained cache),
    # rendered through report.json's typed records into report.md's training table.
    from infertune.report.cells import training_table
    from infertune.report.run_report import RunReport
    from infertune.search.candidate import Candidate, PassReport, Plan, Screen, Status, Step

    ctx = PassContext(workdir=tmp_path / "w", train=dataset(200, True), seed=0, threads=1,
                      cache_dir=tmp_path / "cache")
    step = ("finetune", {"steps": 20, "lr": 1e-2, "val_every": 10, "quiet": True})
    reports = [apply_passes(handle(net(0)), [step], ctx)[1][0] for _ in range(2)]
    assert "cache" not in reports[0] and "cache" in reports[1]

    def cand(cid, rep):
        plan = Plan(id=cid, stage="pruned", label=f"finetune → torch ({cid})",
                    recipe=(Step("finetune"),), runtime="torch", precision="fp32")
        return Candidate(plan=plan, status=Status.OK, screen=Screen(
            passes=(PassReport.from_json({"pass": "finetune", **rep}),
                    PassReport.from_json({"pass": "fold_bn", "applied": True}))))

    report = RunReport(candidates=(cand("a", reports[0]), cand("b", reports[1])))
    head, body = training_table(report)
    assert len(body) == 2  # fold_bn trains nothing: no row
    row = dict(zip(head, body[0]))
    rep = reports[0]
    assert row["step"] == "finetune" and row["setup"] == "fp32/nchw"
    assert row["steps"] == "20" == str(rep["steps_run"])
    assert row["seconds"] == f"{rep['seconds']:.1f}"
    assert row["validation before → after"] == (
        f"top1 {rep['val_metric_before']:.4f} → {rep['val_metric_after']:.4f}")
    assert row["best step"] == str(rep["best_step"]) and row["stopped"] == rep["stop_reason"]
    assert dict(zip(head, body[1]))["stopped"].endswith("loaded from the run's cache")
    assert training_table(RunReport(candidates=()))[1] == []


def _metric_after(flat_calls: int):
    """A validation metric that stays at 0.1 for its first `flat_calls` calls, then rises."""
    calls = []

    def metric(model):
        calls.append(1)
        return 0.1 if len(calls) <= flat_calls else 0.1 + 0.01 * len(calls)
    return metric


@pytest.mark.parametrize("setup, flat, falls_back", [
    ({"autocast": "bf16", "layout": "channels_last", "trial_ms": {}}, 2, True),
    ({"autocast": "fp32", "layout": "channels_last", "trial_ms": {}}, 2, True),
    ({"autocast": "bf16", "layout": "channels_last", "trial_ms": {}}, 1, False),  # it moved
    ({"autocast": "fp32", "layout": "nchw", "trial_ms": {}}, 2, False),   # already the default
    ({"autocast": "bf16", "layout": "channels_last"}, 2, False),          # the options chose it
])
def test_a_trial_chosen_setup_that_leaves_validation_at_its_start_restarts_in_fp32(
        monkeypatch, setup, flat, falls_back):
    # 30 steps, validation every 10: the first validation after the start is at step 10.
    monkeypatch.setattr(recovery, "_choose_setup",
                        lambda task, budget, seed: {**setup, "why": "test"})
    model = net(0)
    start = copy.deepcopy(model.state_dict())
    task = _task(model)
    task.metric = _metric_after(flat)
    log = recovery.train(task, recovery.Budget(steps=30, val_every=10, patience=0, quiet=True),
                         seed=0, threads=1)
    assert log.steps == 30
    if falls_back:
        was = f"{setup['autocast']}/{setup['layout']}"
        assert log.setup["fallback"]["step"] == 10 and log.setup["fallback"]["from"] == was
        assert (log.setup["autocast"], log.setup["layout"]) == ("fp32", "nchw")
        assert "restarted from the start in fp32/nchw" in log.setup["fallback"]["why"]
        from infertune.cli.apply import _setup
        assert _setup(log.setup) == f"{was} restarted at step 10 as fp32/nchw, "
        # steps 11-30 trained from the start: the weights moved, and are plain NCHW
        assert any(not torch.equal(start[k], v) for k, v in model.state_dict().items())
    else:
        assert "fallback" not in log.setup
        assert (log.setup["autocast"], log.setup["layout"]) == (setup["autocast"],
                                                                setup["layout"])
    assert all(p.is_contiguous() for p in model.parameters())
