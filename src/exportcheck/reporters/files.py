"""Writes reports atomically, and checks before any work that each destination can be written
and is none of the run's inputs.

A regular file (or a new one) is written beside its target and renamed over it, with the mode
a new file gets under the umask. A target that exists but is not a regular file (`/dev/null`,
`/dev/stdout`, a named pipe) is written in place: renaming over it would replace the device or
pipe with a plain file. Missing report folders are created, before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable

from exportcheck.errors import OutputError

REPORT_SUFFIXES = {".json": "json", ".sarif": "sarif", ".xml": "junit", ".md": "markdown"}
# `FORMAT=FILE`: a word before the first `=`; a file whose name holds `=` can be given as ./a=b.
_FORMAT_PREFIX = re.compile(r"^([a-z][a-z0-9_-]*)=(.*)$", re.DOTALL)


def parse_output_spec(spec: str) -> tuple[str | None, str]:
    """`FORMAT=FILE` -> (format, file); a plain `FILE` -> (None, file). An unknown format or a
    missing file name is an OutputError."""
    from exportcheck.reporters import REPORTERS

    match = _FORMAT_PREFIX.match(spec)
    if match is None:
        if not spec:
            raise OutputError("names no file", subject="--output")
        return None, spec
    name, path = match.groups()
    if name not in REPORTERS:
        raise OutputError(
            f"unknown format {name!r} in {spec!r} (choose from {', '.join(REPORTERS)})",
            subject="--output",
        )
    if not path:
        raise OutputError(f"{spec!r} names no file", subject="--output")
    return name, path


def format_for_path(path: str, default: str) -> str:
    """The report format a file name asks for (`.json`, `.sarif`, `.xml`, `.md`), else `default`."""
    return REPORT_SUFFIXES.get(os.path.splitext(path)[1].lower(), default)


def same_file(first: str, second: str) -> bool:
    """The same file by real path, or by device and inode (a hard link, a bind mount)."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        one, other = os.stat(first), os.stat(second)
    except OSError:
        return False
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def refuse_inputs(destination: str, inputs: Iterable[str], option: str) -> None:
    """An OutputError when `destination` is one of `inputs`: a report must never replace them."""
    for source in inputs:
        if same_file(destination, source):
            raise OutputError(
                f"{destination!r} is an input of this run ({source!r}); refusing to overwrite it",
                subject=option,
            )


def prepare_destination(path: str) -> None:
    """Creates a missing report folder and checks that the report can be written there."""
    real = os.path.realpath(path)
    if os.path.isdir(real):
        raise OutputError(f"cannot write report ({os.strerror(errno.EISDIR)})", subject=path)
    if os.path.exists(real) and not stat.S_ISREG(os.stat(real).st_mode):
        return  # a device or a pipe: written in place, its own permissions decide
    folder = os.path.dirname(real)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"cannot create the report folder ({error.strerror})", subject=path
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write into {folder!r} ({os.strerror(errno.EACCES)})", subject=path
        )


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
    import tempfile  # only a report written to a file needs it: not stdout, not a device

    try:
        fd, temporary = tempfile.mkstemp(prefix=".exportcheck-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror})", subject=target) from None
    try:
        # mkstemp makes the file private; the report gets the mode a new file would get.
        os.fchmod(fd, 0o666 & ~_umask())
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


def _umask() -> int:
    # Reading the umask means setting it; it is put back at once.
    current = os.umask(0o022)
    os.umask(current)
    return current


def _write_in_place(real: str, target: str, text: str) -> None:
    try:
        with open(real, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write report ({exc.strerror})", subject=target) from None
