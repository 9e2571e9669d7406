"""`infertune optimize` end to end on the small trained reference model, through the CLI:
the run directory, the pick and its export, resume, replay, refusals, Triton.

One real run (module fixture) is shared by the tests that only read it. Settings keep it to
about a minute here: ONNX Runtime only, fold_bn and int8_static, 600 evaluation samples
(with no disagreement the drop's 95% upper end is z²/(n + z²): 0.64 points at 600, so a
1-point budget can be met; at 200 samples it is 1.9 and nothing could be picked), short
latency measurements (speed is not what these tests check).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from extras import require_extra

from infertune.cli import main

pytestmark = pytest.mark.e2e

FAST = ["--runtimes", "onnxruntime", "--passes", "fold_bn,int8_static", "--eval-size", "600",
        "--screen-size", "32", "--calib-size", "32", "--min-runs", "5", "--min-seconds", "0.1",
        "--final-rounds", "1", "--threads", "1"]
STATUSES = {"ok", "failed", "skipped", "incompatible", "screened_out", "not_tried"}


def optimize(out, *extra, model="ref-small"):
    return main(["optimize", model, *FAST, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("opt") / "run"
    assert optimize(out) == 0
    return out, json.loads((out / "report.json").read_text())


def test_report_holds_the_baseline_the_front_and_a_pick_within_budget(run):
    out, rep = run
    assert rep["schema_version"] == 1
    by_id = {c["id"]: c for c in rep["candidates"]}
    base = by_id[rep["baseline_id"]]
    assert base["stage"] == "original" and base["status"] == "ok" and base["recipe"] == []
    assert base["drop"]["value"] == 0.0 and base["fidelity"]["top1_agreement"] == 1.0
    assert rep["data"]["metric"] == "top1"  # ref-small is trained: its labels mean something
    assert all(c["status"] in STATUSES for c in rep["candidates"])
    assert all(c["reason"] for c in rep["candidates"] if c["status"] != "ok")
    assert rep["frontier"] and set(rep["frontier"]) <= set(by_id)
    pick = by_id[rep["pick"]]
    assert pick["status"] == "ok" and pick["fidelity_level"] == "full"
    assert pick["drop"]["high"] <= rep["budget"]["budget_points"]
    assert pick["speedup"] > 0 and pick["latency_ms"]["p50"] > 0
    # int8 candidates were really built with the calibration data and measured
    int8 = [c for c in rep["candidates"] if c["precision"] == "int8" and c["status"] == "ok"]
    assert int8 and all(c["size_mb"] < base["size_mb"] for c in int8)
    assert rep["final_comparison"]["rows"][0]["id"] == rep["baseline_id"]
    _recalibrations_follow_their_min_max_sibling(rep)


def _recalibrations_follow_their_min_max_sibling(rep) -> None:
    """Percentile and entropy ranges of ORT's min-max INT8 (same graph, same speed) are built
    exactly where that min-max candidate missed the budget, and skipped saying so where not."""
    by_id = {c["id"]: c for c in rep["candidates"]}
    recal = [c for c in rep["candidates"] if c["stage"] == "recalibrated"]
    ort = [c for c in recal if c["runtime"] == "onnxruntime"]
    assert {c["recipe"][-1]["options"]["method"] for c in ort} == {"percentile", "entropy"}
    # NNCF's mean-of-min/max sibling is planned too, skipped like its parent (no openvino)
    assert all(c["status"] == "skipped" and "openvino" in c["reason"] for c in recal
               if c not in ort)
    for cand in ort:
        sibling = by_id[cand["parent_id"]]
        assert sibling["recipe"][-1]["options"]["method"] == "minmax"
        assert cand["runtime"] == sibling["runtime"] == "onnxruntime"
        missed = sibling["screen_rule"] == "over_budget" if sibling["status"] != "ok" \
            else not sibling["within_budget"]
        if missed:
            assert cand["status"] != "skipped", cand["reason"]
        else:
            assert cand["status"] == "skipped" and "runs no faster" in cand["reason"]


def test_pick_is_exported_with_a_model_card_and_a_runnable_example(run, tmp_path):
    out, rep = run
    best = out / "best"
    card = json.loads((best / "model_card.json").read_text())
    assert card["candidate"] == rep["pick"] and card["runtime"] == "onnxruntime"
    assert (best / card["artifact"]).is_file()
    assert card["metrics"]["drop"]["high"] <= rep["budget"]["budget_points"]
    assert card["machine"]["cpu"] and card["recipe"]
    # the ORT INT8 pick's weight bits, as its pass reported them; run.py checks them
    pick = next(c for c in rep["candidates"] if c["id"] == rep["pick"])
    int8 = [p for p in pick["passes"] if p["pass"] == "int8_static" and p["applied"]]
    assert card["int8_weight_bits"] == (int8[0]["weight_bits"] if int8 else None)
    assert ("int8_weight_warning" in (best / "run.py").read_text()) == bool(int8)
    # run.py classifies a real digit image (from the built-in set) like the evaluation did
    from PIL import Image

    from infertune.data import load_dataset

    ds = load_dataset("sample:val", input_shape=(3, 28, 28), preprocess="none", limit=1)
    pixels = np.clip(ds.x[0].transpose(1, 2, 0), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    res = subprocess.run([sys.executable, str(best / "run.py"), str(tmp_path / "digit.png")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("class ")


def test_run_directory_files(run):
    out, rep = run
    for name in ("config.yaml", "journal.jsonl", "report.json", "report.md", "report.html"):
        assert (out / name).is_file(), name
    lines = (out / "journal.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    kinds = [e["kind"] for e in entries]
    built = {e["id"] for e in entries if e["kind"] == "build"}
    screened = {e["id"] for e in entries if e["kind"] == "screen"}
    # every built candidate was screened; a candidate planning skipped was never built
    assert built == screened
    assert built == {c["id"] for c in rep["candidates"] if c["passes"] or c["build_s"]}
    assert "final" in kinds
    # the search clock is journaled on every line (a resume continues it)
    clock = [e["elapsed_s"] for e in entries]
    # journal lines keep the clock to 1 ms, report.json's duration_s to 0.1 s
    assert clock == sorted(clock) and clock[-1] <= rep["run"]["duration_s"] + 0.05
    # where the time went, per phase, and it adds up to no more than the search took
    phases = rep["run"]["phase_s"]
    assert {"build", "probe", "evaluate", "latency", "final"} <= set(phases)
    assert all(v > 0 for v in phases.values())
    assert sum(phases.values()) <= rep["run"]["duration_s"] + 1.0


def test_resume_of_a_finished_run_redoes_nothing(run):
    out, rep = run
    before = (out / "journal.jsonl").read_text()
    assert main(["run", str(out / "config.yaml"), "--resume", "--json"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert (out / "journal.jsonl").read_text() == before  # nothing re-measured
    assert again["pick"] == rep["pick"] and again["frontier"] == rep["frontier"]
    screened = {json.loads(line)["id"] for line in before.splitlines()
                if json.loads(line)["kind"] == "screen"}
    assert again["run"]["resumed_candidates"] == len(screened)


def test_a_run_directory_is_not_reused_silently(run, capsys):
    out, _ = run
    assert optimize(out) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert optimize(out, "--resume", "--max-drop", "3") == 2
    assert "max_drop differ" in capsys.readouterr().err


def test_triton_repository(run, tmp_path):
    out, _ = run
    assert main(["export", str(out), "--format", "triton", "--out", str(tmp_path / "repo")]) == 0
    config = (tmp_path / "repo" / "ref-small" / "config.pbtxt").read_text()
    assert 'platform: "onnxruntime_onnx"' in config
    assert "dims: [ 3, 32, 32 ]" in config and "max_batch_size: 8" in config
    assert (tmp_path / "repo" / "ref-small" / "1" / "model.onnx").is_file()


def test_triton_export_of_a_run_without_pick_is_refused(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--format", "triton", "--out", str(tmp_path / "r")]) == 2
    assert "no exported pick" in capsys.readouterr().err


# ------------------------------------------------------------------ faults and kills
def _cli(args, **kw):
    env = {**os.environ, **kw.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "infertune.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, **kw)


def test_crashing_hanging_and_oom_candidates_are_failed_results(tmp_path):
    """A candidate whose child segfaults, hangs past the timeout or runs out of memory is
    recorded as failed with the reason; the search finishes and says nothing met the budget
    only if that is so."""
    out = tmp_path / "run"
    env = {"INFERTUNE_INJECT_FAULT": "onnxruntime=segfault,openvino=oom,torchscript=hang"}
    args = ["optimize", "ref-small", *FAST[:1], "onnxruntime,openvino,torchscript",
            *FAST[2:3], "fold_bn", *FAST[4:], "--candidate-timeout", "20s", "--out", str(out),
            "--json"]
    proc = _cli(args, env=env)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    rep = json.loads((out / "report.json").read_text())
    by_rt = {c["runtime"]: c for c in rep["candidates"] if c["stage"] == "fused"}
    assert by_rt["onnxruntime"]["status"] == "failed"
    assert "SIGSEGV" in by_rt["onnxruntime"]["reason"]
    assert by_rt["openvino"]["status"] == "failed" and "MemoryError" in by_rt["openvino"]["reason"]
    assert by_rt["torchscript"]["status"] == "failed" and "timeout" in by_rt["torchscript"]["reason"]
    base = next(c for c in rep["candidates"] if c["id"] == rep["baseline_id"])
    assert base["status"] == "ok"


def _kill_when(proc, journal, lines: int, timeout_s: float = 300) -> None:
    import signal
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_bytes().splitlines()) >= lines:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _journal_entries(journal):
    return [json.loads(line) for line in journal.read_bytes().splitlines() if line.endswith(b"}")]


def test_full_disk_lock_and_kills_then_resume_gives_the_same_candidates(run, tmp_path, capsys,
                                                                         monkeypatch):
    """A full disk stops the run with one line; a second optimize on a running directory is
    refused by the lock; SIGKILL at two random moments; each time --resume goes on. What the
    journal held is kept as it was, and the run ends with the same candidates and accuracy
    figures as an uninterrupted run (ids are content-derived; calibration is deterministic)."""
    import errno
    import random

    from infertune.search import journal as journal_module

    _, reference = run
    out = tmp_path / "run"
    journal = out / "journal.jsonl"
    real_write, calls = journal_module._write_line, []

    def full_disk(fd, line):  # the third journal line hits a full disk
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, line)

    monkeypatch.setattr(journal_module, "_write_line", full_disk)
    assert optimize(out) == 2
    assert "No space left" in capsys.readouterr().err
    monkeypatch.setattr(journal_module, "_write_line", real_write)
    assert len(_journal_entries(journal)) == 2

    rng = random.Random(7)
    for _ in range(2):
        have = len(_journal_entries(journal))
        proc = _cli(["optimize", "ref-small", *FAST, "--out", str(out), "--resume", "--json"])
        _kill_when(proc, journal, have + rng.randint(1, 3))
    proc = _cli(["optimize", "ref-small", *FAST, "--out", str(out), "--resume", "--json"])
    import time

    while not (out / ".lock").exists() or not (out / ".lock").read_text():
        time.sleep(0.1)
    time.sleep(1.0)
    assert optimize(out, "--resume") == 2              # the lock: refused, not interleaved
    assert "another optimize is running" in capsys.readouterr().err
    kept = _journal_entries(journal)
    proc.communicate(timeout=600)
    assert proc.returncode == 0

    rep = json.loads((out / "report.json").read_text())
    by_id = {c["id"]: c for c in rep["candidates"]}
    for entry in kept:                      # journaled numbers survive unchanged
        if entry["kind"] == "full" and entry.get("status") == "ok":
            assert by_id[entry["id"]]["latency_ms"]["p50"] == entry["full"]["latency_ms"]["p50"]
    assert rep["run"]["resumed_candidates"] >= 1
    ref = {c["id"]: c for c in reference["candidates"]}
    # The planned stages are the same; which candidates later stages add may depend on
    # latency (a different run), so those are compared where both runs have them.
    planned = ("original", "fused", "quantized")
    assert {i for i, c in by_id.items() if c["stage"] in planned} == \
        {i for i, c in ref.items() if c["stage"] in planned}
    for cid, c in by_id.items():
        if cid in ref and c.get("screen_drop") and ref[cid].get("screen_drop"):
            assert c["screen_drop"]["value"] == pytest.approx(ref[cid]["screen_drop"]["value"])
    lines = journal.read_bytes().splitlines()
    assert all(json.loads(line)["kind"] for line in lines if line.endswith(b"}"))


def test_ray_executor_decides_as_the_local_one(run, tmp_path):
    """The same run on a local Ray cluster (started here): the same candidates, the same
    statuses where no latency is involved, and identical accuracy figures (builds and
    evaluations are deterministic; only latency differs between two runs)."""
    require_extra("ray")
    _, local = run
    out = tmp_path / "run"
    assert optimize(out, "--executor", "ray", "--json") == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["run"]["executor"]["executor"] == "ray"
    assert rep["run"]["executor"]["timing_nodes"] == 1
    mine, theirs = ({c["id"]: c for c in r["candidates"]} for r in (rep, local))
    assert set(mine) == set(theirs)
    for cid, c in mine.items():
        other = theirs[cid]
        if "skipped" in (c["status"], other["status"]) or "failed" in (c["status"], other["status"]):
            assert c["status"] == other["status"]
        for key in ("screen_drop", "drop"):
            if c.get(key) and other.get(key) and c.get("fidelity_level") == other.get("fidelity_level"):
                assert c[key]["value"] == pytest.approx(other[key]["value"])
    assert rep["pick"] is not None


def test_a_real_runs_report_names_the_layers_kept_in_float(tmp_path):
    """A budget of 0 points no INT8 candidate can prove, so the mixed-precision stage runs;
    its ledger (report.json, report.md) names the layers each K kept in float, as the
    mixed_precision pass reported them — rendered from this real run, not a fixture."""
    out = tmp_path / "run"
    args = [a if a != "fold_bn,int8_static" else "fold_bn,int8_static,mixed_precision"
            for a in FAST]
    assert main(["optimize", "ref-small", *args, "--max-drop", "0", "--out", str(out),
                 "--json"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["pick"] is None            # nothing can be shown to lose 0 points
    _recalibrations_follow_their_min_max_sibling(rep)
    assert any(c["stage"] == "recalibrated" and c["status"] != "skipped"
               for c in rep["candidates"])  # min-max missed: the other ranges were built
    ledger = rep["mixed_precision"]
    assert ledger and ledger["ledger"], "the mixed-precision stage did not run"
    mixed = {c["id"]: c for c in rep["candidates"] if c["stage"] == "mixed"}
    # one chain per ranking the run measured (sensitivity; cost on the INT8 runtime)
    measured_ranks = {next(p for p in c["passes"] if p["pass"] == "mixed_precision")
                      .get("cost_ranking") is not None for c in mixed.values()
                      if c["status"] == "ok"}
    assert {row["rank"] == "cost" for row in ledger["ledger"]} == measured_ranks
    for row in ledger["ledger"]:
        assert row["layers"], row
        step = next(p for p in mixed[row["candidate"]]["passes"] if p["pass"] == "mixed_precision")
        assert set(row["layers"]) <= set(step["kept_by_choice"])
    assert ledger["kept"] and len(ledger["kept"]) == max(len(p["kept_by_choice"]) for c in
                                                         mixed.values() for p in c["passes"]
                                                         if p["pass"] == "mixed_precision")
    text = (out / "report.md").read_text()
    for name in ledger["kept"]:
        assert name in text
