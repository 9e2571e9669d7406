"""The full evaluation's batch (search.engine.eval_batch): batch 8 for small inputs, batch 1
for inputs of ≥ 1 MiB per image (FP32), which run faster per image unbatched."""
from __future__ import annotations

import pytest
import torch

from infertune.config import OptimizeConfig
from infertune.search import space
from infertune.search.candidate import Candidate, Plan, Screen, Status
from infertune.search.engine import (EVAL_BATCH, SINGLE_EVAL_BYTES, Evaluator, eval_batch,
                                     sample_bytes)
from infertune.search.journal import Journal
from infertune.search.state import RunState, SearchClock

from .recording import RecordingExecutor
from infertune.types import InputSpec, ModelHandle


def _handle(shape):
    return ModelHandle(format="torch", obj=torch.nn.Identity(), input_spec=InputSpec(shape=shape),
                       name="m", source="test")


def test_the_threshold_and_the_sample_size():
    assert EVAL_BATCH == 8 and SINGLE_EVAL_BYTES == 2**20
    # 3×448×448 FP32 = 2,408,448 bytes; 3×128×128 = 196,608; 3×296×296 = 1,051,392
    assert sample_bytes(_handle(("batch", 3, 448, 448))) == 2_408_448
    assert [eval_batch(sample_bytes(_handle((1, 3, s, s)))) for s in (32, 128, 295, 296, 448)] \
        == [8, 8, 8, 1, 1]
    assert sample_bytes(_handle(("batch", 3, "h", "w"))) is None and eval_batch(None) == 8
    assert sample_bytes(None) is None


@pytest.mark.parametrize("side, batch", [(448, 1), (128, 8)])
def test_the_evaluation_job_names_the_batch_its_input_size_gives(tmp_path, side, batch):
    ctx = space.PlanContext(model_key={"source": "m"}, model_format="torch",
                            runtimes=("torch",), registered_passes=frozenset())
    config = OptimizeConfig(model="m", out=str(tmp_path), max_drop=1.0)
    state = RunState(config, tmp_path, _handle(("batch", 3, side, side)), ctx,
                     {"screen_n": 8, "eval_n": 8, "calib_n": 8},
                     clock=SearchClock.from_journal([]))
    rec = RecordingExecutor()
    ev = Evaluator(state, Journal(tmp_path / "journal.jsonl"), rec, lambda event: None)
    cand = Candidate(Plan("c", "fused", "c", (), "torch", "fp32"), status=Status.SCREENED,
                     screen=Screen(probe_ms=1.0, artifact_path="c.pt"))
    assert ev.full_numbers(cand).status is Status.FAILED
    assert [(j["mode"], j["batch"]) for j in rec.jobs] == [("evaluate", batch)]
