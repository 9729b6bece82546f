"""Exports and artifact checks overlapping: while the next format exports, the last artifact is
run on a second thread, when this process has more than one core to itself; once the last format
is exported, the checks still queued run two at a time.

The exporters run one after another on the calling thread: they are mostly Python (one core
under the GIL each, so two at once gain nothing) and share process-wide state (the legacy ONNX
exporter's globals, torch.export swapping the model's parameters for fake tensors while it
traces). What overlaps them is what never touches the user's model: loading an artifact and
running it in ONNX Runtime or torch, which spend their time in C++ with the GIL released (its
static pass runs between the exports, so that a runtime in a process of its own can compile
it meanwhile). Anything that does run the model (a reference for a new batch, the float64 noise,
the training-mode attribution) takes the model run's lock, which every export holds, and so
waits for the export to end. torch's intra-op threads are divided while both run. (On Linux,
pipeline.forked_exports also hands the formats after the first to a forked copy of the process,
which exports them, and checks those that run torch, while the dynamo exporter runs here.)
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

Progress = Callable[[str], None]

# How often a waiting caller passes on the progress the checks reported meanwhile.
_FLUSH_S = 0.2
# Checks run at once after the exports: the last artifacts' loads and runs, largely one core
# each (a session's graph optimization, a TorchScript module's first profiled runs).
TAIL_CHECKS = 2


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), not the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_worker(jobs: int, targets: int, cores: int | None = None) -> int:
    """Each of `min(jobs, targets)` worker processes gets an equal share of the cores."""
    workers = max(1, min(jobs, targets))
    return max(1, (cores or usable_cores()) // workers)


def overlap_threads(cores: int, torch_threads: int) -> int | None:
    """torch's intra-op threads while an export and an artifact check run side by side, or None
    when they should not overlap: fewer than two cores, or fewer than two threads granted to
    this process (a worker of `--jobs`, or a caller's torch.set_num_threads). The export keeps
    one core, the check's torch runs on the rest."""
    budget = min(cores, torch_threads)
    if budget < 2:
        return None
    return budget - 1


class ProgressRelay:
    """Progress from the checks' thread, passed on by the thread that owns the reporter: an
    exporter silences stdout and stderr down to the descriptors while it runs, so a line written
    meanwhile from another thread would be lost."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.owner = threading.get_ident()
        self.pending: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, step: str) -> None:
        with self.lock:
            self.pending.append(step)
        if threading.get_ident() == self.owner:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            steps, self.pending = self.pending, []
        for step in steps:
            self.progress(step)


class _Admission:
    """Lets checks start in the order they were submitted, at most `limit` at a time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self.next = 0
        self.changed = threading.Condition()

    @contextlib.contextmanager
    def turn(self, index: int) -> Iterator[None]:
        with self.changed:
            self.changed.wait_for(lambda: self.next == index and self.running < self.limit)
            self.next += 1
            self.running += 1
            self.changed.notify_all()
        try:
            yield
        finally:
            with self.changed:
                self.running -= 1
                self.changed.notify_all()

    def widen(self, limit: int) -> None:
        with self.changed:
            self.limit = max(self.limit, limit)
            self.changed.notify_all()


class CheckQueue:
    """Artifact checks in submission order: on a second thread when `threads` is given, else
    each at once on the caller's thread. Beside the exports one check runs at a time; once the
    caller waits for the results, the exports are done, and the checks still to run go
    `TAIL_CHECKS` at a time, on the cores the exports used. `results()` returns them in order;
    an exception a check raised is raised there, on the caller's thread."""

    def __init__(self, threads: int | None, relay: ProgressRelay | None) -> None:
        self.threads = threads
        self.relay = relay
        self.futures: list[Future[Any]] = []
        self.pool = ThreadPoolExecutor(TAIL_CHECKS, "exportcheck-checks") if threads else None
        self.admission = _Admission(1)

    def submit(self, check: Callable[[], Any]) -> None:
        if self.pool is None:
            done: Future[Any] = Future()
            try:
                done.set_result(check())
            except BaseException as error:  # raised from results(), as the pool would
                done.set_exception(error)
            self.futures.append(done)
            return
        self.futures.append(self.pool.submit(self._admitted, len(self.futures), check))

    def _admitted(self, index: int, check: Callable[[], Any]) -> Any:
        with self.admission.turn(index):
            return check()

    def flush(self) -> None:
        if self.relay is not None:
            self.relay.flush()

    def results(self) -> list[Any]:
        self.admission.widen(TAIL_CHECKS)
        pending = set(self.futures)
        while pending:
            _, pending = wait(pending, timeout=_FLUSH_S)
            self.flush()
        return [future.result() for future in self.futures]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.flush()


@contextlib.contextmanager
def overlapping_checks(progress: Progress) -> Iterator[tuple[CheckQueue, Progress]]:
    """A CheckQueue and the progress callback to use meanwhile. When the checks overlap the
    exports, torch's threads are divided for the duration, and the warning filters (which the
    exporters and readers replace while they run, on either thread) are put back afterwards."""
    import torch

    threads = overlap_threads(usable_cores(), torch.get_num_threads())
    if threads is None:
        queue = CheckQueue(None, None)
        yield queue, progress
        return
    relay = ProgressRelay(progress)
    queue = CheckQueue(threads, relay)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            try:
                yield queue, relay
            finally:
                queue.close()
    finally:
        torch.set_num_threads(previous)
