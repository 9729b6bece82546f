"""Writes reports atomically: a half-written report never replaces a good one.

A regular file (or a new one) is written beside its target and renamed over it. A target that
exists but is not a regular file (`/dev/null`, `/dev/stdout`, a named pipe) is written in
place: renaming over it would replace the device or pipe with a plain file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile

from exportcheck.errors import OutputError


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    target = os.fspath(path)
    real = os.path.realpath(target)  # a symlinked report stays a symlink to a fresh file
    try:
        mode = os.stat(real).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):
            cause = os.strerror(errno.EISDIR)
            raise OutputError(f"cannot write report ({cause})", subject=target)
        _write_in_place(real, target, text)
        return
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise OutputError("output folder does not exist", subject=target)
    try:
        fd, temporary = tempfile.mkstemp(prefix=".exportcheck-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror})", subject=target) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, real)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write report ({exc.strerror})", subject=target) from None
        raise


def _write_in_place(real: str, target: str, text: str) -> None:
    try:
        with open(real, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write report ({exc.strerror})", subject=target) from None
