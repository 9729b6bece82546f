"""Writing a repaired artifact: atomically, never over an input, next to its external data."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator

from exportcheck.errors import OutputError


def check_destination(output: str, source: str, external_files: list[str]) -> None:
    """Refuses, before any work, an output that is the input, a folder, or (for a model with
    external data, whose references are kept as they are) in another folder than the input."""
    if os.path.isdir(output):
        raise OutputError("is a folder; name the repaired file", subject=output)
    if os.path.exists(output) and os.path.samefile(output, source):
        raise OutputError("is the input artifact; fix never writes over its input", subject=output)
    for side_file in external_files:
        if os.path.exists(output) and os.path.samefile(output, side_file):
            raise OutputError("is one of the input's external data files", subject=output)
    folder = os.path.dirname(os.path.abspath(output))
    if external_files and os.path.realpath(folder) != os.path.realpath(
        os.path.dirname(os.path.abspath(source))
    ):
        raise OutputError(
            "must be in the input's folder: its external data is referenced by a path "
            "relative to that folder, never copied",
            subject=output,
        )
    if not os.path.isdir(folder):
        raise OutputError("its folder does not exist", subject=output)


@contextlib.contextmanager
def _temporary_beside(output: str) -> Iterator[str]:
    folder = os.path.dirname(os.path.abspath(output))
    suffix = os.path.splitext(output)[1]
    handle, temporary = tempfile.mkstemp(prefix=".exportcheck-fix-", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        yield temporary
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def write_atomically(output: str, write: Callable[[str], None]) -> None:
    """`write(temporary)` fills a file beside `output`, which is then renamed into place (a
    rename replaces a symlink at the name instead of following it)."""
    try:
        with _temporary_beside(output) as temporary:
            write(temporary)
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, output)
    except OSError as error:
        raise OutputError(f"cannot write ({error.strerror or error})", subject=output) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
