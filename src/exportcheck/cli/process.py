"""The process boundary: termination signals, the report stream, what the user's code may do to
the process while it runs, and progress lines on stderr."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from exportcheck.errors import OutputError

TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_real_exit = os._exit


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so every cleanup on the way runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class ExitCalledError(Exception):
    """The user's code called os._exit while exportcheck was running it."""


def install_signal_handlers() -> None:
    for signum in TERMINATING_SIGNALS:
        signal.signal(signum, _terminate)


def _terminate(signum: int, _frame: Any) -> None:
    # A second signal must not cut short the cleanup the first one started.
    for other in TERMINATING_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


def leave_if_forked(owner: int) -> None:
    """A process the user's code forked never writes a report or an error: it just ends."""
    if os.getpid() != owner:
        _real_exit(0)


@contextlib.contextmanager
def user_code_contained(owner: int) -> Iterator[None]:
    """While the command runs the user's code: fd 1 and sys.stdout point at stderr, so prints
    never mix into the report stream, and os._exit raises instead of ending the process without
    a report. Both are restored before the report is written."""
    sys.stdout.flush()
    saved = _redirect_fd(1, 2)
    guarded_exit = _guarded_exit(owner)
    os._exit = guarded_exit
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if os._exit is guarded_exit:
            os._exit = _real_exit
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _guarded_exit(owner: int) -> Callable[[int], None]:
    def exit_(code: int) -> None:
        if os.getpid() != owner:  # a forked child (multiprocessing's own): let it go
            _real_exit(code)
        raise ExitCalledError(f"os._exit({code}) was called while exportcheck was running")

    return exit_


def _redirect_fd(fd: int, to: int) -> int | None:
    """Points `fd` at `to` if sys.stdout really writes to `fd`; returns a copy of the old one."""
    try:
        if sys.stdout.fileno() != fd:
            return None
        target = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None  # an in-memory stream (a test runner): the Python-level redirect suffices
    saved = os.dup(fd)
    os.dup2(target if to == 2 else to, fd)
    return saved


def write_stdout(text: str) -> None:
    """Writes to stdout; a full disk or a closed pipe is a one-line OutputError."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as error:
        silence_stdout()
        cause = error.strerror or type(error).__name__
        raise OutputError(f"cannot write ({cause})", subject="stdout") from None


def silence_stdout() -> None:
    """Points fd 1 at /dev/null, so the interpreter's last flush of what is buffered cannot
    fail a second time (as Python's documentation advises for a closed pipe)."""
    with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def write_stderr(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
        sys.stderr.flush()


class ProgressLines:
    """One line per step on stderr, with the seconds since the command started. A step names
    targets and artifacts, so it is escaped: a name cannot move the cursor or reorder the line."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, step: str) -> None:
        elapsed = time.monotonic() - self.started
        from exportcheck.reporters.escaping import printable

        write_stderr(f"exportcheck: {elapsed:7.1f} s  {printable(step)}\n")


@contextlib.contextmanager
def progress_reporter(quiet: bool) -> Iterator[Callable[[str], None] | None]:
    """A status line on a terminal, progress lines when stderr is not one, nothing if quiet."""
    if quiet:
        yield None
        return
    if not sys.stderr.isatty():
        yield ProgressLines()
        return
    from rich.console import Console
    from rich.text import Text

    from exportcheck.reporters.escaping import printable

    with Console(stderr=True).status("starting") as status:
        # A Text, not a str: rich would read `[...]` in a name as markup.
        yield lambda step: status.update(Text(printable(step)))
