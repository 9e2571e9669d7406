"""The parent side of a candidate job: runs `python -m infertune.search.worker` in its own
process group with a timeout, and turns a crash (a negative return code: segfault,
out-of-memory kill), a hang (killed at the timeout) or an exception into a result with a
one-line reason. The same machinery as measure.isolate, with the search's worker module."""
from __future__ import annotations

import sys
from typing import Any

from ..measure.isolate import exit_reason, run_child

WORKER = "infertune.search.worker"


def run_candidate_job(job: dict[str, Any], timeout_s: float, *, python: str = sys.executable
                      ) -> dict[str, Any]:
    """Runs one build/evaluate job; never raises for what happens inside the child."""
    run = run_child(job, timeout_s, python=python, module=WORKER, prefix="infertune-cand-")
    res = run.result or {"status": "running", "phase": "start"}
    rc, tail = run.returncode, run.log_tail
    phase = res.get("phase", "start")
    if run.timed_out:
        res.update(status="failed", reason=f"timeout: no result within {timeout_s:g} s "
                                           f"(phase '{phase}'); the process was killed")
    elif res.get("status") == "running":
        res.update(status="failed", reason=exit_reason(rc or 0, phase, tail))
    if res.get("status") not in ("ok", "incompatible"):
        res["log_tail"] = tail[-1000:]
    res["wall_s"] = round(run.seconds, 3)
    return res
