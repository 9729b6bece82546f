"""Writes reports atomically: a half-written report never replaces a good one."""

from __future__ import annotations

import contextlib
import os
import tempfile

from exportcheck.errors import OutputError


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
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
        os.replace(temporary, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write report ({exc.strerror})", subject=target) from None
        raise
