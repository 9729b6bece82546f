"""Runs many targets: a stable shard of them, in worker processes when asked.

A worker leads its own process group, and ending a worker ends that group: the worker and what
the user's code started in it. A process that leaves the group (`setsid()`, a daemon's double
fork) escapes that. On Linux, a caller that asks for `end_descendants` (the CLI does) makes the
process running the pool a child subreaper while the pool runs, so such processes are
reparented to it instead of to init; when the pool ends, however it ends, every process that
came under it meanwhile is ended (SIGTERM, a grace, SIGKILL) and reaped. Elsewhere, and if
exportcheck itself is killed with SIGKILL, a detached process outlives the run.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from exportcheck.errors import (
    EXIT_INTERNAL,
    ExportcheckError,
    ForkedChildError,
    InputSpecError,
    TargetTimeoutError,
    clipped,
    first_line,
)
from exportcheck.pipeline import scratch as scratch_folders
from exportcheck.pipeline.overlap import threads_per_worker
from exportcheck.results.report import Report, input_problem, merge_reports

Progress = Callable[[str], None]

COMMANDS = {"validate": "validate_targets", "audit": "audit_targets"}
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# A terminated worker gets this long to go before it is killed.
_GRACE_S = 5.0
# A process a worker left behind gets this long after SIGTERM: the run already waited for its
# workers and should not wait as long again for what they abandoned.
_STRAY_GRACE_S = 2.0
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


class WorkerCrashError(ExportcheckError):
    """A target's worker process ended without a report: a segfault, os._exit, the OOM killer,
    or an exception that escaped the command."""

    exit_code = EXIT_INTERNAL


def parse_shard(shard: str) -> tuple[int, int]:
    """`"i/n"` -> (i, n), with 1 <= i <= n."""
    match = _SHARD.match(shard)
    if not match:
        raise InputSpecError(
            f"malformed shard {clipped(shard)} (expected i/n, e.g. 2/4)", subject="--shard"
        )
    if max(len(match.group(1)), len(match.group(2))) > 6:
        raise InputSpecError(
            f"shard {clipped(shard)} is out of range (n is at most 999999)", subject="--shard"
        )
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= count:
        raise InputSpecError(
            f"shard {clipped(shard)} is out of range (i/n needs 1 <= i <= n)", subject="--shard"
        )
    return index, count


def shard_of(spec: str, count: int) -> int:
    """The shard (1..count) a target belongs to, from its own name alone: adding or removing a
    model moves no other model to another CI job. A file under the working directory is named
    relative to it, so a checkout's location does not move its models either."""
    import hashlib

    location, sep, attribute = spec.rpartition(":")
    if sep and os.path.isabs(location):
        relative = os.path.relpath(location)
        if not relative.startswith(os.pardir):
            spec = f"{relative.replace(os.sep, '/')}:{attribute}"
    digest = hashlib.sha256(spec.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(specs: list[str], shard: str | None) -> list[str]:
    """The targets of shard `i/n`, sorted: the n shards are disjoint, cover every target, and
    depend neither on the order the targets were given nor on which others there are."""
    if shard is None:
        return list(specs)
    index, count = parse_shard(shard)
    return sorted(spec for spec in specs if shard_of(spec, count) == index)


def run_targets(
    specs: Sequence[str],
    *,
    jobs: int = 1,
    timeout: float | None = None,
    shard: str | None = None,
    progress: Progress | None = None,
    command: str = "validate",
    end_descendants: bool = False,
    **options: Any,
) -> Report:
    """Runs `command` ("validate" or "audit") on every target of the shard and merges the
    reports in target order. With `jobs` > 1 or a `timeout`, targets run in up to `jobs`
    spawned worker processes, each taking the next target when it is done with one, so torch
    is imported once per worker. A crash, an escaped error or a hang ends that worker and costs
    its target only; a fresh worker takes the targets left.

    `end_descendants` (Linux, workers only): while the workers run, this process is a child
    subreaper, and when they are done every process that came under it meanwhile, detached
    ones included, is ended and reaped. Meant for a process that runs nothing else (the CLI):
    a child another thread starts while the pool runs would be ended too."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r} (choose from {', '.join(COMMANDS)})")
    if jobs < 1:
        raise InputSpecError(f"must be at least 1, got {jobs}", subject="--jobs")
    if timeout is not None and not timeout > 0:
        raise InputSpecError(
            f"must be a positive number of seconds, got {timeout}", subject="--timeout"
        )
    if shard is not None:
        parse_shard(shard)
    from exportcheck.targets.python_targets import expand_targets

    targets = select_shard(expand_targets(specs), shard)
    notify = progress or _quiet
    if jobs == 1 and timeout is None:
        reports = _run_in_process(command, targets, options, notify)
    else:
        with _strays_ended(end_descendants):
            reports = _run_in_workers(command, targets, options, notify, jobs, timeout)
    return merge_reports(reports, fail_on=options.get("fail_on", "error"))


def _quiet(_: str) -> None:
    return None


def _command(command: str) -> Callable[..., Report]:
    from exportcheck.pipeline import validation

    return getattr(validation, COMMANDS[command])


def _run_in_process(
    command: str, targets: list[str], options: dict[str, Any], notify: Progress
) -> list[Report]:
    run = _command(command)
    total = len(targets)
    reports = []
    for index, spec in enumerate(targets):
        prefix = f"[{index}/{total}] "
        reports.append(run([spec], progress=lambda step, p=prefix: notify(p + step), **options))
        notify(f"[{index + 1}/{total}] done {spec}")
    return reports


def _worker(
    command: str,
    options: dict[str, Any],
    conn: Any,
    scratch: str,
    memory_scratch: str | None,
    workers: int,
    threads: int,
    parent: int,
) -> None:
    """A spawned process that runs targets one after another, as the parent sends them, until
    it sends None. For each target it sends ("started", None), ("progress", step)..., then
    ("report", Report); ("error", one line) when something escaped the command, and then it
    ends. Torch is imported, and the exporters warm up, once per worker, not once per target."""
    end_with_parent(parent)
    # The worker leads its own process group, so the parent can end it with whatever the
    # user's code started; the parent decides when that happens, Ctrl-C included.
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent's stdout carries the report; whatever the user's code prints goes to stderr.
    with contextlib.suppress(OSError):
        os.dup2(2, 1)
    # Scratch files live where the parent removes them, even after a kill.
    tempfile.tempdir = scratch
    scratch_folders.memory_root = memory_scratch
    scratch_folders.memory_sharers = workers
    try:
        import torch

        torch.set_num_threads(threads)
        run = _command(command)
        while (spec := conn.recv()) is not None:
            conn.send(("started", None))
            report = run([spec], progress=lambda step: conn.send(("progress", step)), **options)
            conn.send(("report", report))
    except ForkedChildError:  # a copy the user's code forked: it must send nothing
        raise SystemExit(0) from None
    except EOFError:  # the parent is gone or done
        pass
    except BaseException as error:  # a worker reports what escaped instead of dying with it
        with contextlib.suppress(Exception):
            conn.send(("error", first_line(error)))
    conn.close()
    # The parent waits for this process to end: the collector's last passes over torch's objects
    # at teardown would cost it a second (cli.main.main).
    gc.freeze()


def end_with_parent(parent: int) -> None:
    """A worker must not outlive its parent, even one killed with SIGKILL: on Linux the kernel
    sends it SIGKILL when the parent dies (PR_SET_PDEATHSIG); elsewhere, or if the parent died
    before the request, it leaves at once."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        raise SystemExit(0)


@dataclass
class _Worker:
    """A worker process, the parent's end of its pipe, and the target it runs now with what it
    sent about that target so far."""

    process: Any
    conn: Any
    scratch: tuple[str, ...]
    timeout: float | None
    index: int = -1
    spec: str = ""
    deadline: float | None = None
    report: Report | None = None
    error: str | None = None
    eof: bool = False
    stopped: bool = False

    def assign(self, index: int, spec: str) -> None:
        """Sends the worker its next target. The target's time runs from now, and restarts
        when the worker says it started (a new worker imports torch first)."""
        self.index, self.spec, self.report, self.error = index, spec, None, None
        self.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self.conn.send(spec)


def _run_in_workers(
    command: str,
    targets: list[str],
    options: dict[str, Any],
    notify: Progress,
    jobs: int,
    timeout: float | None,
) -> list[Report]:
    import multiprocessing
    from multiprocessing.connection import wait

    # Forking a process that has loaded torch is unsafe (threads, CUDA); spawn starts clean.
    context = multiprocessing.get_context("spawn")
    fail_on = options.get("fail_on", "error")
    total = len(targets)
    reports: list[Report | None] = [None] * total
    pending = list(enumerate(targets))
    pending.reverse()
    running: list[_Worker] = []
    finished = 0
    # Each worker's torch gets its share of the cores instead of all of them.
    threads = threads_per_worker(jobs, total)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                worker = _start(
                    context, command, len(running), min(jobs, total), options, threads, timeout
                )
                running.append(worker)
                worker.assign(*pending.pop())
            deadlines = [w.deadline for w in running if w.deadline is not None]
            wait(
                [w.conn for w in running] + [w.process.sentinel for w in running],
                timeout=max(0.0, min(deadlines) - time.monotonic()) if deadlines else None,
            )
            for worker in list(running):
                prefix = f"[{finished}/{total}] "
                outcome = _outcome(worker, fail_on, lambda step, p=prefix: notify(p + step))
                if outcome is None:
                    continue
                verb, report = outcome
                reports[worker.index] = report
                finished += 1
                notify(f"[{finished}/{total}] {verb} {worker.spec}")
                if verb == "done" and pending:
                    worker.assign(*pending.pop())
                    continue
                if verb == "done":
                    # A worker told there is nothing left is only shutting down: let it.
                    with contextlib.suppress(OSError):
                        worker.conn.send(None)
                    worker.process.join(_GRACE_S)
                # Any other outcome ends the worker with its process group; a fresh one takes
                # the targets left.
                _stop([worker])
                running.remove(worker)
    finally:
        _stop(running)
    return [r for r in reports if r is not None]


def _start(
    context: Any,
    command: str,
    number: int,
    workers: int,
    options: dict[str, Any],
    threads: int,
    timeout: float | None,
) -> _Worker:
    scratch = tempfile.mkdtemp(prefix="exportcheck-worker-")
    memory_scratch = scratch_folders.make_memory_scratch(prefix="exportcheck-worker-")
    folders = (scratch,) if memory_scratch is None else (scratch, memory_scratch)
    mine, theirs = context.Pipe()
    process = context.Process(
        target=_worker,
        args=(command, options, theirs, scratch, memory_scratch, workers, threads, os.getpid()),
        name=f"exportcheck-worker-{number + 1}",
    )
    try:
        process.start()
    except BaseException:
        mine.close()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        # The parent keeps only its own end, so a dead worker reads as end of file.
        theirs.close()
    return _Worker(process, mine, folders, timeout)


def _outcome(worker: _Worker, fail_on: str, forward: Progress) -> tuple[str, Report] | None:
    """("done" | "failed" | "crashed" | "timed out", report) once the worker's target is over;
    None while it runs."""
    # Read the exit status before draining the pipe: a worker that sends its report and exits
    # in between must not look like a crash.
    exited = worker.process.exitcode is not None
    _drain(worker, forward)
    if worker.report is not None:
        return "done", worker.report
    if worker.error is not None:
        message = f"worker raised {worker.error}"
        return "failed", _problem(worker, fail_on, WorkerCrashError(message, subject=worker.spec))
    if exited or worker.eof:
        worker.process.join(_GRACE_S)
        message = f"worker crashed ({_exit_status(worker.process)})"
        return "crashed", _problem(worker, fail_on, WorkerCrashError(message, subject=worker.spec))
    if worker.deadline is not None and time.monotonic() >= worker.deadline:
        message = f"timed out after {worker.timeout:g} s"
        return "timed out", _problem(
            worker, fail_on, TargetTimeoutError(message, subject=worker.spec)
        )
    return None


def _drain(worker: _Worker, forward: Progress) -> None:
    """Reads what the worker has sent so far about its target, forwarding its progress."""
    while not worker.eof and worker.report is None and worker.error is None:
        try:
            if not worker.conn.poll():
                return
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            worker.eof = True
            return
        except Exception as error:  # a message that does not unpickle here
            worker.error = f"unreadable result: {first_line(error)}"
            return
        if kind == "started" and worker.timeout is not None:
            # The target's time starts now, not while Python and torch were importing.
            worker.deadline = time.monotonic() + worker.timeout
        elif kind == "progress":
            forward(payload)
        elif kind == "report":
            worker.report = payload
        else:
            worker.error = payload


def _exit_status(process: Any) -> str:
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"exit code {code}, {signal.Signals(-code).name}"
    return f"exit code {code}"


def _problem(worker: _Worker, fail_on: str, error: ExportcheckError) -> Report:
    return Report(
        subjects=(worker.spec,), errors=(input_problem(worker.spec, error),), fail_on=fail_on
    )


def _signal_group(worker: _Worker, signum: int) -> None:
    """Signals the worker's process group: the worker and any process the user's code started.
    A worker not yet in its own group (it sets it first thing) gets the signal alone."""
    pid = worker.process.pid
    if pid is None:
        return
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        if worker.process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def _stop(workers: Sequence[_Worker]) -> None:
    """Ends the workers' processes (terminate, then kill) and removes their scratch folders."""
    workers = [w for w in workers if not w.stopped]
    for worker in workers:
        _signal_group(worker, signal.SIGTERM)
    give_up = time.monotonic() + _GRACE_S
    for worker in workers:
        worker.process.join(max(0.0, give_up - time.monotonic()))
        _signal_group(worker, signal.SIGKILL)
        worker.process.join()
        worker.conn.close()
        worker.process.close()
        for folder in worker.scratch:
            shutil.rmtree(folder, ignore_errors=True)
        worker.stopped = True


def _prctl() -> Callable[..., int] | None:
    """Linux's prctl(2), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


@contextlib.contextmanager
def _strays_ended(enabled: bool) -> Iterator[None]:
    """While the block runs, this process is a child subreaper (where Linux allows it); when it
    ends, however it ends, every process that came under this one meanwhile is ended and
    reaped. The children it had before, the resource tracker included, are left alone."""
    prctl = _prctl() if enabled else None
    if prctl is None:
        yield
        return
    import ctypes
    from multiprocessing import resource_tracker

    previous = ctypes.c_int(0)
    prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0)
    # The spawn context starts the tracker with the first worker; it must count as known.
    resource_tracker.ensure_running()
    me = os.getpid()
    known = _children(_process_table(), me)
    if prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), 0, 0, 0) != 0:
        yield
        return
    try:
        yield
    finally:
        try:
            _end_strays(me, known)
        finally:
            prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(previous.value), 0, 0, 0)


def _process_table() -> dict[int, int]:
    """Process id -> parent process id, for every process /proc shows."""
    table = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    stat = handle.read()
                # The name in parentheses may hold anything, spaces and parentheses included.
                table[int(entry.name)] = int(stat.rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # it ended while the table was read
    return table


def _children(table: dict[int, int], parent: int) -> set[int]:
    return {pid for pid, ppid in table.items() if ppid == parent}


def _below(table: dict[int, int], roots: set[int]) -> set[int]:
    """`roots` and every process below them."""
    found, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, ppid in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def _end_strays(me: int, known: set[int]) -> None:
    """Ends every child of `me` not in `known` and all below it: SIGTERM, then SIGKILL after
    a grace, until none is left; each is reaped as it becomes a child (a subreaper inherits
    the orphans of the processes it ends)."""
    signum = signal.SIGTERM
    give_up = time.monotonic() + _STRAY_GRACE_S
    signalled: set[int] = set()
    # A process stuck in the kernel (uninterruptible sleep) ignores even SIGKILL for a while;
    # the run does not wait for it forever.
    last_try = give_up + _GRACE_S
    while time.monotonic() < last_try:
        table = _process_table()
        strays = _children(table, me) - known
        if not strays:
            return
        for pid in _below(table, strays) - (signalled if signum == signal.SIGTERM else set()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
            signalled.add(pid)
        _reap(strays)
        if signum == signal.SIGTERM and time.monotonic() >= give_up:
            signum = signal.SIGKILL
        time.sleep(0.02)


def _reap(children: set[int]) -> None:
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
