"""Exports split between this process and a forked copy of it, when two cores are granted.

The dynamo ONNX exporter spends seconds in Python, under the GIL, and the other exporters cannot
run beside it on a thread: the GIL would take turns between them, and the legacy exporter and
torch.export keep process-wide state. So once torch.export has traced the model (the program
both the dynamo exporter and the .pt2 archive use), this process forks: the copy runs the other
formats' exporters on its own copy of the model, with one torch thread, on the second core,
while this process runs the dynamo exporter. The copy writes each artifact where this process
would have, checks those of them that run in torch itself (no exporter re-traces a program in
the copy, so torch's backend flags stay as they are there), and sends back each outcome, in
order, with its progress.

Only on Linux (fork is unsafe on macOS and missing on Windows), and never once CUDA is
initialised (a forked CUDA context is unusable). A copy that dies, or stalls without using the
processor (a lock another thread held at the fork), is killed, and what it did not export and
check is done here, as it would have been without it.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from exportcheck.export.exporters import Exported, Exporter, ExportFailed
from exportcheck.pipeline.parallel import end_with_parent
from exportcheck.pipeline.scratch import available_memory_bytes

Outcome = Exported | ExportFailed

# The format this process exports while the copy exports the others: the slowest by far, the
# one that shares torch.export's program with the .pt2 archive (traced once, here, before the
# fork), and the one that must stay here: its exporter re-traces the program
# (run_decompositions), which turns torch's mkldnn and cudnn flags off process-wide.
HERE = "onnx"
# What the copy may hold at once beyond the memory it shares with this process, in weights of the
# model: the legacy exporter's folded constants, an archive's serialized copy, one loaded artifact
# and its runs.
COPY_MEMORY_FACTOR = 4
# A copy whose processor time has not moved for this long is waiting on a lock it will never get.
STALLED_S = 10.0
_POLL_S = 0.5


def fork_allowed(formats: Sequence[str], threads: int | None, model_bytes: int) -> bool:
    """Whether a copy should export the other formats while this process runs the dynamo ONNX
    exporter: it and another format are asked for, torch threads are granted beside the exports
    (`threads`, from the overlap), fork is safe here, and the memory available holds what the
    copy adds beside this process's export (COPY_MEMORY_FACTOR times the model's weights)."""
    if HERE not in formats or len(formats) < 2 or threads is None:
        return False
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    available = available_memory_bytes()
    if available is None or model_bytes * COPY_MEMORY_FACTOR > available:
        return False
    import torch

    return not torch.cuda.is_initialized()


class SplitExports:
    """Each (format, path) job's outcome, in job order, as (index in `jobs`, outcome, checked).
    With `fork`, once torch.export's program is made, the jobs other than the ONNX one go to a
    forked copy while the ONNX job is exported here; a job the copy did not finish is exported
    here afterwards. Without `fork`, every job is exported here. `starting(fmt)` is called as
    each job starts (in the copy too), and every export here holds `lock` (the model run's).

    `copy_checks` are the artifact checks the copy runs itself, right after an export; what one
    returns comes back as `checked` (None for an artifact not checked yet).
    """

    def __init__(
        self,
        exporter: Exporter,
        jobs: Sequence[tuple[str, str]],
        lock: threading.RLock,
        fork: bool,
        starting: Callable[[str], None],
        copy_checks: CopyChecks,
    ) -> None:
        self.exporter = exporter
        self.jobs = list(jobs)
        self.lock = lock
        self.fork = fork
        self.starting = starting
        self.copy_checks = copy_checks
        self.copy: _Copy | None = None

    def __iter__(self) -> Iterator[tuple[int, Outcome, Any]]:
        here = [i for i, (fmt, _) in enumerate(self.jobs) if fmt == HERE or not self.fork]
        there = [i for i in range(len(self.jobs)) if i not in here]
        for i in here:
            self.starting(self.jobs[i][0])
            if there and self.copy is None:
                with self.lock, contextlib.suppress(ExportFailed):
                    self.exporter.program()  # a failure is kept, for each format needing it
                self.copy = _Copy.start(
                    self.exporter, [self.jobs[j] for j in there], self.copy_checks, self.starting
                )
            yield i, self._export_here(*self.jobs[i]), None
        for n, i in enumerate(there):
            done = self.copy.outcome(n) if self.copy is not None else None
            if done is None:
                self.starting(self.jobs[i][0])
                yield i, self._export_here(*self.jobs[i]), None
            else:
                yield i, done[0], done[1]

    def _export_here(self, fmt: str, path: str) -> Outcome:
        try:
            with self.lock:
                return self.exporter.export(fmt, path)
        except ExportFailed as why:
            return why

    def __enter__(self) -> SplitExports:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.copy is not None:
            self.copy.end()


@dataclass(frozen=True)
class CopyChecks:
    """Artifact checks the copy runs itself: `check(fmt, path, exported, progress)` on each
    artifact whose format `wants` accepts, once exported; the copy's progress lines reach
    `progress` here. What a check returns is sent back pickled, so it must hold plain data of
    exportcheck's own (the report's dataclasses)."""

    wants: Callable[[str], bool]
    check: Callable[[str, str, Exported, Callable[[str], None]], Any]
    progress: Callable[[str], None]


class _Copy:
    """The forked copy, seen from this process: its pid, the read end of its pipe, and a thread
    that drains the pipe as messages come (a full pipe would stop the copy while this process
    exports), relaying the copy's progress and keeping its outcomes in order."""

    def __init__(
        self,
        pid: int,
        conn: Connection,
        starting: Callable[[str], None],
        progress: Callable[[str], None],
    ) -> None:
        self.pid = pid
        self.conn = conn
        self.starting = starting
        self.progress = progress
        self.outcomes: list[tuple[Outcome, Any]] = []
        self.finished = False
        self.gone = False
        self.arrival = threading.Condition()
        self.reader = threading.Thread(target=self._drain, name="exportcheck-copy", daemon=True)
        self.reader.start()

    @classmethod
    def start(
        cls,
        exporter: Exporter,
        jobs: Sequence[tuple[str, str]],
        copy_checks: CopyChecks,
        starting: Callable[[str], None],
    ) -> _Copy | None:
        read, write = multiprocessing.Pipe(duplex=False)
        parent = os.getpid()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        # Objects frozen before the fork are left alone by the copy's collector, which would
        # otherwise write to every object's header and so copy most of the heap. Unfreezing
        # thaws every frozen object, so where the caller froze some, nothing is frozen here.
        freezing = gc.get_freeze_count() == 0
        if freezing:
            gc.freeze()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns of fork in a threaded process: the copy runs only exporters
                # and checks, and never takes a lock of this process's other threads; one that
                # stalls is killed (STALLED_S).
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:
            read.close()
            write.close()
            return None
        finally:
            if freezing and os.getpid() == parent:
                gc.unfreeze()
        if pid == 0:
            _run_copy(exporter, jobs, copy_checks, write, parent)
        write.close()
        return cls(pid, read, starting, copy_checks.progress)

    def outcome(self, n: int) -> tuple[Outcome, Any] | None:
        """The copy's n-th outcome and what its check found, or None where the copy ended or
        stalled first (it is then ended, before this process exports what the copy did not)."""
        with self.arrival:
            self.arrival.wait_for(lambda: len(self.outcomes) > n or self.finished)
            if len(self.outcomes) > n:
                return self.outcomes[n]
        self.end()
        return None

    def _drain(self) -> None:
        try:
            while (message := self._next_message()) is not None:
                if message[0] in ("starting", "progress"):
                    (self.starting if message[0] == "starting" else self.progress)(message[1])
                    continue
                with self.arrival:
                    self.outcomes.append(message[1:])
                    self.arrival.notify_all()
        finally:
            with self.arrival:
                self.finished = True
                self.arrival.notify_all()

    def _next_message(self) -> tuple[Any, ...] | None:
        cpu, still_since = _cpu_time(self.pid), time.monotonic()
        while not self.gone:
            try:
                if self.conn.poll(_POLL_S):
                    return self.conn.recv()
            except (EOFError, OSError):
                return None
            now, spent = time.monotonic(), _cpu_time(self.pid)
            if spent is None or spent != cpu:
                cpu, still_since = spent, now
            elif now - still_since > STALLED_S:
                return None
        return None

    def end(self) -> None:
        """Kills the copy if it still runs, reaps it, and waits for the draining thread."""
        if self.gone:
            return
        self.gone = True
        with contextlib.suppress(OSError):
            if os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        if self.reader is not threading.current_thread():
            self.reader.join()
        self.conn.close()


def _cpu_time(pid: int) -> int | None:
    """The processor time a process has used, in clock ticks (utime + stime in /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def _run_copy(
    exporter: Exporter,
    jobs: Sequence[tuple[str, str]],
    copy_checks: CopyChecks,
    conn: Connection,
    parent: int,
) -> None:
    """The copy's whole life: export each job (and check it, where asked), send its outcome,
    and leave with os._exit, so that nothing of the caller (exit handlers, buffered output, a
    test runner) runs twice."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends the copy
        end_with_parent(parent)
        with open(os.devnull, "w") as sink:
            for fd in (1, 2):
                os.dup2(sink.fileno(), fd)
        import torch

        torch.set_num_threads(1)
        for fmt, path in jobs:
            conn.send(("starting", fmt))
            checked = None
            try:
                exported: Outcome = exporter.export(fmt, path)
            except ExportFailed as why:
                exported = why
            if isinstance(exported, Exported) and copy_checks.wants(fmt):
                checked = copy_checks.check(
                    fmt, path, exported, lambda step: conn.send(("progress", step))
                )
            conn.send(("done", exported, checked))
    finally:
        os._exit(0)
