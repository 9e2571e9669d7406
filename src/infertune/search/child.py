"""The parent side of a candidate job: runs `python -m infertune.search.worker` in its own
process group with a timeout, and turns a crash (a negative return code: segfault,
out-of-memory kill), a hang (killed at the timeout) or an exception into a result with a
one-line reason. The same machinery as measure.isolate, with the search's worker module."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from ..measure.isolate import _log_tail, _read_partial, _spawn_and_wait, exit_reason

WORKER = "infertune.search.worker"


def run_candidate_job(job: dict[str, Any], timeout_s: float, *, python: str = sys.executable
                      ) -> dict[str, Any]:
    """Runs one build/evaluate job; never raises for what happens inside the child."""
    with tempfile.TemporaryDirectory(prefix="infertune-cand-") as tmp:
        job = {**job, "result_path": str(Path(tmp) / "result.json")}
        log_path = Path(tmp) / "child.log"
        rc, timed_out, seconds = _spawn_and_wait(job, log_path, timeout_s, python, WORKER)
        res = _read_partial(Path(job["result_path"])) or {"status": "running", "phase": "start"}
        tail = _log_tail(log_path)
    phase = res.get("phase", "start")
    if timed_out:
        res.update(status="failed", reason=f"timeout: no result within {timeout_s:g} s "
                                           f"(phase '{phase}'); the process was killed")
    elif res.get("status") == "running":
        res.update(status="failed", reason=exit_reason(rc or 0, phase, tail))
    if res.get("status") not in ("ok", "incompatible"):
        res["log_tail"] = tail[-1000:]
    res["wall_s"] = round(seconds, 3)
    return res
