"""The configured stage: runtime configuration as a candidate dimension, measured, never
assumed (issue 17, section 2).

* The plan holds the stage: each contender's runtime proposes configurations, which become
  candidates with their options in the id, the label and the record.
* CONFIG_RULE on hand-made rows: a configuration replaces the default only when its round
  range does not overlap the default's; a tie keeps the default.
* The export carries the chosen configuration: run.py opens the artifact with it, the model
  card lists it, Triton's config.pbtxt gets what its backend can take.
* One real optimize (tiny trained model, ONNX Runtime and OpenVINO, 2 rounds): the stage ran,
  every configuration was checked against its contender's outputs before timing, the opened
  sessions report the requested settings, and the decision follows the rule from the
  recorded rounds. No assertion depends on which configuration is faster.
"""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from infertune.search import best, select, space
from infertune.search.candidate import (Candidate, Drop, FullEval, Latency, Plan, Screen, Status,
                                        Step)
from infertune.search.ids import candidate_id

MODEL_KEY = {"source": "ref-small", "load": {}, "input_size": None}


def _ctx(**kw):
    base = dict(model_key=MODEL_KEY, model_format="torch",
                runtimes=("torch", "onnxruntime", "openvino"), threads=2, max_threads=2)
    return space.PlanContext(**{**base, **kw})


def _contender(runtime="openvino", artifact="/x/model.xml"):
    recipe = (Step("fold_bn", {}),)
    cid = candidate_id(MODEL_KEY, [s.to_json() for s in recipe], runtime)
    d = Drop("top1", 0.0, -0.5, 0.6, 600, "test")
    plan = Plan(cid, "fused", f"fold_bn → {runtime}", recipe, runtime, "fp32")
    return Candidate(plan, Status.OK, screen=Screen(artifact_path=artifact, artifact_bytes=1024,
                                                    drop=d, probe_ms=1.0),
                     full=FullEval(drop=d, fidelity=None, latency=Latency(p50=1.0)))


# ------------------------------------------------------------------ the plan
def test_the_plan_holds_the_configured_stage_with_options_in_id_label_and_record():
    assert space.STAGES[-1] == "configured"
    contender = _contender("openvino")
    variants = space.configured(_ctx(), contender)
    assert [v.plan.runtime_options for v in variants] == [{"threads": 1}, {"pinning": False}]
    for v in variants:
        assert v.plan.stage == "configured" and v.plan.parent_id == contender.id
        assert v.plan.recipe == contender.plan.recipe and v.runtime == contender.runtime
        assert v.status is Status.PLANNED
        assert v.id == candidate_id(MODEL_KEY, [{"pass": "fold_bn", "options": {}}], "openvino",
                                    v.plan.runtime_options)
        record = v.to_json()
        assert record["runtime_options"] == dict(v.plan.runtime_options)
        assert record["stage"] == "configured" and Candidate.from_json(record).plan == v.plan
    assert variants[1].label == "fold_bn → openvino [pinning=False]"
    assert len({v.id for v in variants} | {contender.id}) == 3
    # the default configuration keeps the id it had before configurations existed
    assert contender.id == candidate_id(MODEL_KEY, [{"pass": "fold_bn", "options": {}}],
                                        "openvino", {})
    through = space.configured(_ctx(objective="throughput"), contender)
    assert {"hint": "THROUGHPUT"} in [v.plan.runtime_options for v in through]
    ort = space.configured(_ctx(), _contender("onnxruntime", "/x/model.onnx"))
    assert {"spinning": False} in [v.plan.runtime_options for v in ort]
    assert space.configured(_ctx(), _contender("torch", "/x/model.pt2")) == []


def test_the_stage_says_why_it_cannot_decide():
    assert "at least 2 rounds" in space.config_skip_reason(_ctx(), rounds=1)
    assert "size" in space.config_skip_reason(_ctx(objective="size"), rounds=3)
    assert space.config_skip_reason(_ctx(), rounds=2) is None


def test_measured_options_put_the_configuration_over_the_runtime_defaults():
    assert space.measured_options("openvino", {"pinning": False, "threads": 1}) == \
        {"precision": "f32", "batch": 1, "pinning": False}        # threads: the harness's
    assert space.measured_options("onnxruntime", {}) == {}


# ------------------------------------------------------------------ the rule
def _rows(**by_round):
    return [{"id": cid, "by_round": values} for cid, values in by_round.items()]


def test_a_configuration_replaces_the_default_only_when_it_measurably_wins():
    win = select.pick_configuration(_rows(d=[10.0, 10.4, 10.2], a=[8.0, 8.3, 8.1]), "d")
    assert (win.kept, win.best) == ("a", "a") and "measurably wins" in win.reason
    tie = select.pick_configuration(_rows(d=[10.0, 10.4, 10.2], a=[9.0, 10.1, 9.2]), "d")
    assert (tie.kept, tie.best, tie.tied) == ("d", "a", ("d", "a"))
    assert "within noise" in tie.reason
    default_best = select.pick_configuration(_rows(d=[9.0, 9.1, 9.2], a=[9.5, 9.6, 9.9]), "d")
    assert default_best.kept == "d" and default_best.best == "d"


def test_the_noise_rule_follows_the_best_median_as_the_pick_does():
    # b has the best median but overlaps the default: a tie, the default is kept, although
    # c alone would have beaten the default (TIE_RULE: the best decides, not any winner)
    rows = _rows(d=[10.0, 10.5], b=[8.0, 10.2], c=[9.2, 9.4])
    assert select.pick_configuration(rows, "d").kept == "d"
    # a and b tied with each other, both clear of the default: the first in plan order
    rows = _rows(d=[10.0, 10.5], a=[8.4, 8.9], b=[8.3, 8.6])
    got = select.pick_configuration(rows, "d")
    assert (got.kept, got.best, got.tied) == ("a", "b", ("a", "b"))
    # c is tied with the best but overlaps the default: not eligible
    rows = _rows(d=[10.0, 10.5], c=[8.9, 10.1], b=[8.3, 9.0])
    assert select.pick_configuration(rows, "d").kept == "b"


def test_the_rule_for_throughput_and_missing_rounds():
    got = select.pick_configuration(_rows(d=[100.0, 104.0], a=[120.0, 125.0]), "d", "throughput")
    assert got.kept == "a" and "images/s" in got.reason
    assert select.pick_configuration(_rows(d=[100.0, 104.0], a=[90.0, 99.0]), "d",
                                     "throughput").kept == "d"
    # a failed round leaves one value: no range, no say
    assert select.pick_configuration(_rows(d=[10.0, 10.5], a=[1.0, None]), "d").kept == "d"
    lonely = select.pick_configuration(_rows(d=[10.0, None], a=[1.0, 1.1]), "d")
    assert lonely.kept == "d" and lonely.best is None


# ------------------------------------------------------------------ the export
@pytest.fixture(scope="module")
def ort_model(tmp_path_factory):
    from infertune.load import load_model
    from infertune.runtimes import RUNTIMES

    handle = load_model("ref-small")
    folder = tmp_path_factory.mktemp("export")
    return handle, RUNTIMES.get("onnxruntime").build(handle, folder / "build")


def test_the_exported_pick_carries_its_configuration(ort_model, tmp_path):
    """A configured pick: run.py opens the artifact with its settings (read back from the
    session in the script's own process), the model card lists them, and Triton gets the
    ones its ONNX Runtime backend takes and names the one it cannot."""
    from PIL import Image

    handle, artifact = ort_model
    parent = _contender("onnxruntime", str(artifact))
    options = {"threads": 1, "spinning": False}
    plan = Plan(candidate_id(MODEL_KEY, [{"pass": "fold_bn", "options": {}}], "onnxruntime",
                             options),
                "configured", f"{parent.label} [threads=1, spinning=False]", parent.plan.recipe,
                "onnxruntime", "fp32", parent_id=parent.id, runtime_options=options)
    pick = Candidate(plan, Status.OK, screen=parent.screen, full=parent.full)
    run_dir = tmp_path / "run"
    s = SimpleNamespace(run_dir=run_dir, records={pick.id: pick}, threads=2, handle=handle,
                        data_info={"preprocess": "darknet"})
    report = {"pick": pick.id, "baseline_id": pick.id, "candidates": [pick.to_json()],
              "model": {"source": "ref-small", "input": handle.input_spec.to_dict()},
              "budget": {}, "data": {}, "timing": {"threads": 2}, "machine": {}}
    exported = best.export_best(s, report)
    card = json.loads((run_dir / "best" / "model_card.json").read_text())
    assert card["load"]["runtime_options"] == options
    assert card["load"]["config"]["intra_op_num_threads"] == 1
    assert card["load"]["config"]["config_entries"] == {"session.intra_op.allow_spinning": "0"}
    script = (run_dir / "best" / "run.py").read_text()
    probe = ("\nso = session.get_session_options()\n"
             "print('SETTINGS', so.intra_op_num_threads, "
             "so.get_session_config_entry('session.intra_op.allow_spinning'))\n")
    (run_dir / "best" / "run.py").write_text(script + probe)
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    res = subprocess.run([sys.executable, str(run_dir / "best" / "run.py"),
                          str(tmp_path / "digit.png")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("class ") and "SETTINGS 1 0" in res.stdout
    assert exported["artifact"].endswith("model.onnx")

    tri = best.triton(run_dir, tmp_path / "repo")
    config = (tmp_path / "repo" / "ref-small" / "config.pbtxt").read_text()
    assert 'parameters { key: "intra_op_thread_count" value: { string_value: "1" } }' in config
    assert tri["not_set"] == ["session.intra_op.allow_spinning=0"] and tri["not_set_note"]


# ------------------------------------------------------------------ end to end
@pytest.mark.e2e
@pytest.mark.slow
def test_optimize_measures_configurations_side_by_side(tmp_path):
    from infertune.cli import main

    out = tmp_path / "run"
    args = ["optimize", "ref-small", "--runtimes", "onnxruntime,openvino", "--passes", "fold_bn",
            "--eval-size", "600", "--screen-size", "32", "--calib-size", "32", "--min-runs", "5",
            "--min-seconds", "0.1", "--final-rounds", "2", "--threads", "1", "--out", str(out),
            "--json"]
    assert main(args) == 0
    rep = json.loads((out / "report.json").read_text())
    stage = rep["configuration"]
    assert stage["ran"] and stage["rule"] == select.CONFIG_RULE
    by_id = {c["id"]: c for c in rep["candidates"]}
    configured = [c for c in rep["candidates"] if c["stage"] == "configured"]
    assert configured and {c["runtime"] for c in configured} == {"onnxruntime", "openvino"}
    for block in stage["contenders"]:
        assert block["status"] == "ok" and block["rounds"] == 2
        contender = by_id[block["contender"]]
        rows = {r["id"]: r for r in block["rows"]}
        assert set(rows) == {contender["id"], *block["configurations"]}
        for cid in block["configurations"]:
            c = by_id[cid]
            assert c["parent_id"] == contender["id"] and c["runtime_options"]
            assert c["label"].startswith(contender["label"] + " [")
            # every timing was checked first against the contender's own outputs: a
            # configuration that changed them would be failed, not timed
            assert c["status"] in ("ok", "screened_out"), c["reason"]
            assert rows[cid]["status"] == "ok" and len(rows[cid]["by_round"]) == 2
            assert c["drop"] == contender["drop"]       # same artifact, same outputs
            assert c["artifact"] == contender["artifact"]
            session = rows[cid]["session"]
            if c["runtime_options"] == {"spinning": False}:
                assert session["session_options"]["config_entries"] == \
                    {"session.intra_op.allow_spinning": "0"}
            if c["runtime_options"] == {"optimization": "extended"}:
                assert session["session_options"]["graph_optimization_level"] == \
                    "ORT_ENABLE_EXTENDED"
            if c["runtime_options"] == {"pinning": False}:
                assert session["enable_cpu_pinning"] is False
        # the decision is CONFIG_RULE applied to the recorded rounds, and the candidates'
        # statuses follow it
        order = [contender["id"], *block["configurations"]]
        again = select.pick_configuration([{"id": i, "by_round": rows[i]["by_round"]}
                                           for i in order], contender["id"])
        assert again.kept == block["kept"]
        for cid in block["configurations"]:
            assert (by_id[cid]["status"] == "ok") == (cid == block["kept"])
            if cid != block["kept"]:
                assert by_id[cid]["screen_rule"] == "configuration"
    # a kept configuration stands in for its contender in the final rounds
    finalists = {r["id"] for r in rep["final_comparison"]["rows"]}
    for block in stage["contenders"]:
        if block["kept"] != block["contender"]:
            assert block["kept"] in finalists and block["contender"] not in finalists
    assert rep["run"]["phase_s"]["configure"] > 0
    card = json.loads((out / "best" / "model_card.json").read_text())
    pick = by_id[rep["pick"]]
    assert card["load"]["runtime_options"] == pick["runtime_options"]
    assert card["load"]["options"]["threads"] == pick["runtime_options"].get("threads", 1)
    assert "CONFIG = " in (out / "best" / "run.py").read_text()
    # resumed: the journaled configuration rounds are replayed, not measured again
    journal = (out / "journal.jsonl").read_text()
    assert sum(json.loads(line)["kind"] == "config" for line in journal.splitlines()) == \
        len(stage["contenders"])
    assert main(["run", str(out / "config.yaml"), "--resume", "--json"]) == 0
    assert (out / "journal.jsonl").read_text() == journal
    assert json.loads((out / "report.json").read_text())["configuration"] == stage


# ------------------------------------------------------------------ when the stage cannot run
class _NoExecutor:
    """Fails the test if the stage tries to build or measure anything."""

    def run_jobs(self, *a, **k):
        raise AssertionError("nothing may be built here")

    def measure(self, *a, **k):
        raise AssertionError("nothing may be measured here")

    def describe(self):
        return {"executor": "none"}


def _evaluator(tmp_path, **config):
    from infertune.config import OptimizeConfig
    from infertune.search.engine import Evaluator
    from infertune.search.journal import Journal
    from infertune.search.state import RunState, SearchClock

    journal = Journal(tmp_path / "journal.jsonl")
    cfg = OptimizeConfig(model="ref-small", out=str(tmp_path), threads=2, **config)
    state = RunState(cfg, tmp_path, None, _ctx(), {"screen_n": 8, "eval_n": 8, "calib_n": 8},
                     clock=SearchClock.from_journal(list(journal.read())))
    base = _contender("torch", "/x/model.pt2")
    state.baseline = state.put(base.with_(plan=Plan("base", "original", "original → torch", (),
                                                     "torch", "fp32")))
    return Evaluator(state, journal, _NoExecutor(), lambda event: None)


def test_the_stage_is_reported_with_its_reason_when_it_cannot_run(tmp_path):
    from infertune.search.run import configure_stage

    ev = _evaluator(tmp_path / "a", final_rounds=1)
    ev.state.put(_contender("openvino"))
    configure_stage(ev)
    record = ev.state.configuration
    assert record["ran"] is False and "at least 2 rounds" in record["reason"]
    assert record["rule"] == select.CONFIG_RULE and record["contenders"] == []

    ev = _evaluator(tmp_path / "b", final_rounds=3)
    configure_stage(ev)                       # nothing but the baseline
    assert "no candidate other than the baseline" in ev.state.configuration["reason"]

    ev = _evaluator(tmp_path / "c", final_rounds=3)
    ev.state.put(_contender("torch", "/x/model.pt2"))   # a runtime with no configurations
    configure_stage(ev)
    record = ev.state.configuration
    assert record["contenders"] == [] and "torch propose none" in record["reason"]


def test_the_time_budget_leaves_configurations_untried_and_a_resume_agrees(tmp_path):
    from infertune.search.run import configure_stage

    ev = _evaluator(tmp_path, final_rounds=3, time_budget_s=5.0)
    contender = ev.state.put(_contender("openvino"))
    faster = _contender("torch", "/x/model.pt2")        # better, but nothing to configure
    ev.state.put(faster.with_(full=FullEval(drop=faster.drop, fidelity=None,
                                            latency=Latency(p50=0.5))))
    configure_stage(ev)
    assert [b["contender"] for b in ev.state.configuration["contenders"]] == [contender.id]
    block = ev.state.configuration["contenders"][0]
    assert block["status"] == "not_tried" and "time budget" in block["reason"]
    variants = [ev.state.records[i] for i in block["configurations"]]
    assert variants and all(v.status is Status.NOT_TRIED for v in variants)
    assert all(v.plan.parent_id == contender.id for v in variants)
    # the decision was journaled: a resumed run replays it without measuring anything
    again = _evaluator(tmp_path, final_rounds=3, time_budget_s=5.0)
    again.state.put(_contender("openvino"))
    configure_stage(again)
    assert again.state.configuration["contenders"] == ev.state.configuration["contenders"]
