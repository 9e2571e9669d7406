"""Atomic file output: write to a temporary file in the destination folder, then rename.
An interrupted run never leaves a half-written file under the final name.

A destination that cannot be written (read-only or missing permissions, a full disk, a
parent that is a file) is an `OutputError` naming the destination, so the CLI prints one
line instead of a traceback; the temporary file is removed either way.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputError

# errno values that mean "this destination cannot take the output" when raised while the
# temporary file is being written (other OSErrors in the caller's block are its own bugs).
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                            errno.EFBIG, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG})


def output_error(dest: str | os.PathLike, exc: OSError) -> OutputError:
    """A one-line OutputError naming `dest` with the system's reason (e.g. 'No space left')."""
    reason = exc.strerror or type(exc).__name__
    return OutputError(f"cannot write output: {reason}", path=str(dest))


def _prepare(dest: Path) -> Path:
    """Creates the parent folder and an empty temporary file next to `dest`; returns it."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise output_error(dest, exc) from None
    os.close(fd)
    # mkstemp creates 0600; a finished output gets the usual mode (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to `dest`; renames it onto `dest` if the block succeeds.

    Raises:
        OutputError: the folder cannot be created or written, the disk is full, or the
            rename fails (the temporary file is removed).
    """
    dest = Path(dest)
    tmp_path = _prepare(dest)
    try:
        try:
            yield tmp_path
        except OSError as exc:
            if exc.errno in _OUTPUT_ERRNOS:
                raise output_error(dest, exc) from None
            raise
        try:
            os.replace(tmp_path, dest)
        except OSError as exc:
            raise output_error(dest, exc) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_writable(dest: str | os.PathLike) -> None:
    """Fails fast, before any expensive work, if a file cannot be created next to `dest`.

    Raises:
        OutputError: `dest` is a folder, or its folder cannot be created or written.
    """
    dest = Path(dest)
    if dest.is_dir():
        raise OutputError("is a directory; give a file name", path=str(dest))
    _prepare(dest).unlink()


def write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text(dest: str | os.PathLike, text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))
