"""The benchmark harness: every runtime measured the same way, each in its own process.

    from infertune.measure import SessionFactory, measure, compare

    ort = SessionFactory("onnxruntime", "model.onnx")
    one = measure(ort, input_shape=(3, 448, 448), throughput=[1, 8, 32])
    cmp = compare([ort, SessionFactory("onnxruntime", "int8.onnx", label="ort-int8")],
                  rounds=3, input_shape=(3, 448, 448))

A runtime plugs in through `OPENERS` (see infertune/runtimes/session.py). Importing this package
imports no ML framework and not numpy: only the child process (worker.py) and the openers
load them. The machine fingerprint is `infertune.measure.fingerprint.fingerprint()`
(not re-exported here: a function named like its module would shadow the module).
"""
from __future__ import annotations

from .isolate import RESULT_KEYS, run_job
from .rounds import compare, make_job, measure, schedule, summarize
from ..runtimes.session import OPENERS, Session, SessionFactory, get_opener
from .stats import NOISY_CV
from .timing import THROUGHPUT_TIMING, TimingConfig

__all__ = ["NOISY_CV", "OPENERS", "RESULT_KEYS", "Session", "SessionFactory",
           "THROUGHPUT_TIMING", "TimingConfig", "compare", "get_opener",
           "make_job", "measure", "run_job", "schedule", "summarize"]
