"""Runs one measurement job in its own child process and turns whatever happens to it into a
result: "ok", "failed" (exception, crash, signal), "timeout" (killed), "unavailable".

Why `subprocess` running `python -m infertune.measure.worker` rather than multiprocessing:
the child is a fresh interpreter that imports only the runtime it measures (no memory,
threads or imported frameworks inherited from the parent, so peak RSS and thread pools are
the runtime's own); nothing is pickled (the job is JSON on stdin, so a job can be replayed
by hand: `python -m infertune.measure.worker < job.json`); a segfault shows as a negative
return code; and the child gets its own session, so a hang is ended by killing its process
group, helpers included. multiprocessing's "spawn" would also re-import the parent's
`__main__`, which breaks under pytest, notebooks and `python -c`.

The child writes its result, phase by phase, to a file (not stdout: runtimes print there),
so a crash or a timeout in a late phase keeps what the earlier phases measured.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _atomic

RESULT_KEYS = ("runtime", "label", "batch", "latency_ms", "throughput_ips", "best_batch",
               "peak_rss_mb", "artifact_mb", "cold_start_ms", "energy_j_per_image",
               "energy_reason", "status", "reason", "threads", "noisy", "cv")
# Set for the child so that every library's pools agree with the measured thread count;
# they must be in the environment before the library loads, hence here and not in the child.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_TAIL_CHARS = 4000


def empty_result(job: dict[str, Any]) -> dict[str, Any]:
    """Every key of a result, None where not measured yet; the child fills it in."""
    res: dict[str, Any] = dict.fromkeys(RESULT_KEYS)
    session = job["session"]
    res.update(runtime=session["runtime"], label=session.get("label") or session["runtime"],
               batch=job["batch"], threads=job["threads"], throughput_ips={},
               status="running", phase="start", noisy=False, warnings=[])
    return res


def write_result(path: str | os.PathLike, res: dict[str, Any]) -> None:
    """Writes a (partial) result atomically: a reader never sees half a file."""
    _atomic.write_text(path, json.dumps(res))


def child_env(threads: int) -> dict[str, str]:
    """The parent's environment, thread counts set, and infertune importable in the child
    even when the parent found it through a sys.path tweak rather than an install."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"  # so the log tail quoted in a reason is complete
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def die_with_parent() -> None:
    """Called first thing in a child: the kernel kills it if its parent dies (Linux
    PR_SET_PDEATHSIG). The child leads its own session so a timeout can kill its group, which
    also shields it from a kill aimed at the parent's group: without this, a SIGKILLed search
    would leave an orphan still measuring (disturbing the resumed run) or still writing its
    candidate's folder."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the call above: follow it now
        os._exit(1)


def _kill_group(proc: subprocess.Popen) -> None:
    # The child leads its own session (start_new_session), so its group id is its pid:
    # this ends the child and anything it started, and nothing else.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _spawn_and_wait(job: dict[str, Any], log_path: Path, timeout_s: float,
                    python: str, module: str = "infertune.measure.worker"
                    ) -> tuple[int | None, bool, float]:
    """(return code, timed out, seconds) of one child running `python -m module` on `job`."""
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([python, "-m", module],
                                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                env=child_env(job["threads"]), start_new_session=True)
        try:
            proc.communicate(json.dumps(job).encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return proc.returncode, True, time.monotonic() - t0
        except BaseException:  # Ctrl-C in the parent must not leave the child running
            _kill_group(proc)
            raise
    return proc.returncode, False, time.monotonic() - t0


def _log_tail(path: Path) -> str:
    try:
        data = path.read_bytes()[-_TAIL_CHARS:]
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


def _last_line(text: str) -> str:
    """The most telling line of a dead child's output, for a one-line reason.

    After a fatal signal faulthandler prints "Fatal Python error: ...", the stack (innermost
    frame first) and then a list of extension modules: quote the error and the innermost
    frame rather than that list.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    fatal = [i for i, ln in enumerate(lines) if ln.startswith("Fatal Python error:")]
    if fatal:
        i = fatal[-1]
        frame = next((ln for ln in lines[i + 1:] if ln.startswith("File ")), "")
        return f"{lines[i]}; {frame}"[:300].rstrip("; ")
    return lines[-1][:300] if lines else ""


def _read_partial(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def exit_reason(returncode: int, phase: str, log_tail: str) -> str:
    """One line saying how a child that wrote no final result ended."""
    if returncode < 0:
        num = -returncode
        try:
            name = signal.Signals(num).name
        except ValueError:
            name = f"signal {num}"
        desc = signal.strsignal(num) or ""
        how = f"killed by {name} ({desc})" if desc else f"killed by {name}"
    else:
        how = f"exited with code {returncode} without a result"
    line = _last_line(log_tail)
    return f"{how} during phase '{phase}'" + (f"; last output: {line}" if line else "")


def classify(job: dict[str, Any], partial: dict[str, Any] | None, returncode: int | None,
             timed_out: bool, timeout_s: float, log_tail: str) -> dict[str, Any]:
    """Merges what the child wrote with how it ended into one result."""
    res = {**empty_result(job), **(partial or {})}
    phase = res.get("phase", "start")
    if timed_out:
        res.update(status="timeout", reason=f"no result within {timeout_s:g} s (phase "
                                             f"'{phase}'); the process was killed")
    elif res["status"] == "running":  # the child died before writing its verdict
        res.update(status="failed", reason=exit_reason(returncode or 0, phase, log_tail))
    if res["status"] != "ok":
        res["log_tail"] = log_tail[-1000:]
    return res


@dataclass(frozen=True)
class ChildRun:
    """What one child process left behind: its (partial) result file, how it ended, its log.

    Attributes:
        result: the JSON the child last wrote to its result file, None if it wrote none.
        returncode: the child's exit status (negative: killed by that signal).
        timed_out: the child was killed at the timeout.
        seconds: wall-clock time of the child, start-up included.
        log_tail: the last characters of the child's stdout and stderr.
    """

    result: dict[str, Any] | None
    returncode: int | None
    timed_out: bool
    seconds: float
    log_tail: str


def run_child(job: dict[str, Any], timeout_s: float, *, python: str = sys.executable,
              module: str = "infertune.measure.worker", prefix: str = "infertune-measure-"
              ) -> ChildRun:
    """Runs `python -m module` on `job` (JSON on stdin; its "result_path" is set here) in a
    fresh child with its own process group, killed at `timeout_s`; never raises for what
    happens inside the child. The one entry point for every kind of child job (measurement
    here, a candidate's build and evaluation in search/child.py): the caller turns the
    ChildRun into its own kind of result."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        job = {**job, "result_path": str(Path(tmp) / "result.json")}
        log_path = Path(tmp) / "child.log"
        rc, timed_out, seconds = _spawn_and_wait(job, log_path, timeout_s, python, module)
        return ChildRun(_read_partial(Path(job["result_path"])), rc, timed_out, seconds,
                        _log_tail(log_path))


def run_job(job: dict[str, Any], timeout_s: float, *, python: str = sys.executable
            ) -> dict[str, Any]:
    """Runs `job` (see worker.py) in a fresh child and returns its result, whatever happens.

    Args:
        job: the JSON-ready job; its "result_path" is set for the child.
        timeout_s: wall-clock limit for the whole child, start-up included.
        python: the interpreter to run the child with.
    """
    run = run_child(job, timeout_s, python=python)
    res = classify(job, run.result, run.returncode, run.timed_out, timeout_s, run.log_tail)
    res["wall_s"] = round(run.seconds, 3)
    return res


def artifact_bytes(path: str | os.PathLike) -> int | None:
    """Size on disk of an artifact: a file plus its companions, or a whole folder.

    Companions are the files a runtime loads along with the named one: ONNX external data
    (`model.onnx.data`, any `model.onnx.*`) and OpenVINO's weights (`model.bin` next to
    `model.xml`). None for no artifact ("") or a missing path.
    """
    if not path:
        return None
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    if not p.is_file():
        return None
    # startswith, not glob: a file name may contain glob characters such as "[".
    companions = {f for f in p.parent.iterdir() if f.name.startswith(p.name + ".")}
    if p.suffix == ".xml":
        companions.add(p.with_suffix(".bin"))
    return p.stat().st_size + sum(c.stat().st_size for c in companions if c.is_file())
