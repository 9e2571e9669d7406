"""Fake runtimes with known behaviour, to test the harness itself (never used by `bench`).

The measuring child imports this module only when a job names it (`SessionFactory.module`
= `infertune.runtimes.session.TESTING_MODULE`); `factory(...)` builds such a job spec.

    sleep  sleeps `ms` + `ms_per_image` x batch per call (and `open_ms` once at open)
    crash  dies in `where` ("open"|"run") by `how`: "segv" (a real SIGSEGV), "abort",
           "signal" (SIGKILL, as the OOM killer sends), "exit" (os._exit(`code`))
    hang   never returns from `where` ("open"|"run")
    raise  raises RuntimeError(`message`) in `where`
    alloc  allocates and touches `mb` MiB on each call, then frees it (a transient peak,
           which the child's high-water mark catches and RSS polling could miss)

With where="run", the misbehaviour starts at call number `after` + 1 (default: the first),
so a test can let the cold start and warm-up pass and fail in the timed loop.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Any, Mapping

import numpy as np

from ..runtimes.session import OPENERS, TESTING_MODULE, SessionFactory


def factory(runtime: str, label: str | None = None, **options: Any) -> SessionFactory:
    """A SessionFactory for one of the fake runtimes above."""
    return SessionFactory(runtime=runtime, options=options, module=TESTING_MODULE, label=label)


class _Base:
    def __init__(self, options: Mapping[str, Any]):
        self.options = dict(options)
        self.calls = 0
        if self.options.get("where", "run") == "open":
            self.misbehave()

    def run(self, x: np.ndarray) -> Any:
        self.calls += 1
        late_enough = self.calls > int(self.options.get("after", 0))
        if self.options.get("where", "run") == "run" and late_enough:
            self.misbehave()
        return x

    def misbehave(self) -> None:
        """What the fake does wrong; nothing for the well-behaved ones."""

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"fake": type(self).__name__, "options": self.options}


class _Sleep(_Base):
    def __init__(self, options: Mapping[str, Any]):
        super().__init__(options)
        time.sleep(float(options.get("open_ms", 0.0)) / 1e3)

    def run(self, x: np.ndarray) -> Any:
        ms = float(self.options.get("ms", 1.0))
        ms += float(self.options.get("ms_per_image", 0.0)) * x.shape[0]
        time.sleep(ms / 1e3)
        return x


class _Crash(_Base):
    def misbehave(self) -> None:
        how = self.options.get("how", "segv")
        if how == "segv":
            ctypes.string_at(0)  # reads address 0: a genuine segmentation fault
        elif how == "abort":
            os.abort()
        elif how == "signal":
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
        os._exit(int(self.options.get("code", 3)))  # "exit": no cleanup, no traceback


class _Hang(_Base):
    def misbehave(self) -> None:
        while True:
            time.sleep(3600)


class _Raise(_Base):
    def misbehave(self) -> None:
        raise RuntimeError(self.options.get("message", "fake runtime failure"))


class _Alloc(_Base):
    def run(self, x: np.ndarray) -> Any:
        # np.ones writes every page, so the memory is resident, not just reserved.
        buf = np.ones(int(float(self.options.get("mb", 100)) * 2**20), dtype=np.uint8)
        del buf
        return x


for _name, _cls in (("sleep", _Sleep), ("crash", _Crash), ("hang", _Hang),
                    ("raise", _Raise), ("alloc", _Alloc)):
    OPENERS.add(_name, lambda _artifact, options, _cls=_cls: _cls(options))
