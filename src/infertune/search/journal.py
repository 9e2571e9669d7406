"""The run's journal and lock.

`journal.jsonl` holds one JSON object per finished step. A line is appended with a single
`write` of the whole line on a file opened with O_APPEND, then fsync'd: a kill leaves at most
one partial *last* line, which `read` drops (and reports) so a resumed run redoes only that
step. Only the process holding the lock writes, so lines never interleave.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError, InfertuneError


class RunLocked(InfertuneError):
    """Another optimize is using this run directory."""


class Journal:
    """Append-only JSON lines; `entries` maps (kind, id) to the latest entry of that key."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}
        self.dropped: list[str] = []
        for entry in self.read():
            self.entries[(entry["kind"], entry["id"])] = entry

    def read(self) -> Iterator[dict[str, Any]]:
        """Entries in order; a torn or garbled line is skipped and noted in `dropped`."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for number, raw in enumerate(f, 1):
                entry = _parse(raw)
                if entry is None:
                    self.dropped.append(f"line {number}")
                    continue
                yield entry

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.entries.get((kind, key))

    def append(self, kind: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
        """Writes one line atomically (one O_APPEND write, then fsync) and remembers it."""
        entry = {"kind": kind, "id": key, **data}
        line = (json.dumps(entry, separators=(",", ":"), default=_default) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _torn_tail_guard(fd, self.path)
            written = _write_line(fd, line)
            if written != len(line):  # a full disk: the short line is dropped on read
                raise InfertuneError(f"{self.path}: disk full while writing the journal")
            os.fsync(fd)
        except OSError as exc:
            raise InfertuneError(f"{self.path}: cannot write the journal: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        self.entries[(kind, key)] = entry
        return entry


def _write_line(fd: int, line: bytes) -> int:
    """The one write of a journal line (a seam for the full-disk test)."""
    return os.write(fd, line)


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.endswith(b"\n"):
        return None
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, huge ints
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str) \
            or not isinstance(entry.get("id"), str):
        return None
    return entry


def _torn_tail_guard(fd: int, path: Path) -> None:
    """If a killed writer left a partial last line, end it so the next line stays whole."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) != b"\n":
            os.write(fd, b"\n")


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


class RunLock:
    """An exclusive, non-blocking flock on RUN_DIR/.lock; released when the process ends,
    however it ends, so a SIGKILL never leaves a stale lock."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"{self.path.parent}: cannot use as run directory: "
                              f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            self.fd = None
            raise RunLocked(f"{self.path.parent}: another optimize is running in this run "
                            f"directory (pid {holder}); wait for it or use another --out") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
