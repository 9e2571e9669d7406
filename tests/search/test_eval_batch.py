"""The full evaluation's batch (search.engine.eval_batch): batch 8 amortises the per-call
cost of fast candidates; a candidate whose batch-1 probe takes ≥ 10 ms is evaluated at
batch 1, where large inputs run faster per image."""
from __future__ import annotations

from infertune.config import OptimizeConfig
from infertune.search import space
from infertune.search.candidate import Candidate, Plan, Screen, Status
from infertune.search.engine import EVAL_BATCH, SINGLE_EVAL_MS, Evaluator, eval_batch
from infertune.search.journal import Journal
from infertune.search.state import RunState, SearchClock


def test_the_threshold():
    assert EVAL_BATCH == 8 and SINGLE_EVAL_MS == 10.0
    assert [eval_batch(ms) for ms in (None, 0.2, 9.99, 10.0, 177.0)] == [8, 8, 8, 1, 1]


class _Recorder:
    """An executor that records the jobs it is given and fails them (no child runs)."""

    def __init__(self):
        self.jobs = []

    def run_jobs(self, jobs, timeout_s):
        self.jobs += jobs
        return [{"status": "failed", "reason": "recorded only"} for _ in jobs]


def test_each_evaluation_job_names_the_batch_its_probe_gives(tmp_path):
    ctx = space.PlanContext(model_key={"source": "m"}, model_format="torch",
                            runtimes=("torch",), registered_passes=frozenset())
    config = OptimizeConfig(model="m", out=str(tmp_path), max_drop=1.0)
    state = RunState(config, tmp_path, None, ctx, {"screen_n": 8, "eval_n": 8, "calib_n": 8},
                     clock=SearchClock.from_journal([]))
    rec = _Recorder()
    ev = Evaluator(state, Journal(tmp_path / "journal.jsonl"), rec, lambda event: None)
    for cid, probe in (("slow", 177.0), ("fast", 0.3)):
        cand = Candidate(Plan(cid, "fused", cid, (), "torch", "fp32"), status=Status.SCREENED,
                         screen=Screen(probe_ms=probe, artifact_path=f"{cid}.pt"))
        assert ev.full_numbers(cand).status is Status.FAILED
    assert [(j["id"], j["mode"], j["batch"]) for j in rec.jobs] == [
        ("slow", "evaluate", 1), ("fast", "evaluate", 8)]
