"""Exports overlapping artifact checks: how threads are divided, and that overlapping changes
nothing in the report."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import exportcheck
from exportcheck.pipeline.overlap import (
    TAIL_CHECKS,
    CheckQueue,
    ProgressRelay,
    overlap_threads,
    threads_per_worker,
    usable_cores,
)
from tests.conftest import build_sample, report_summary


@pytest.mark.parametrize(
    ("cores", "torch_threads", "expected"),
    [(1, 8, None), (8, 1, None), (2, 2, 1), (2, 8, 1), (8, 4, 3), (16, 16, 15)],
)
def test_checks_overlap_only_with_two_cores_granted(cores, torch_threads, expected):
    assert overlap_threads(cores, torch_threads) == expected


@pytest.mark.parametrize(
    ("jobs", "targets", "cores", "expected"),
    [(2, 6, 2, 1), (1, 6, 2, 2), (4, 2, 8, 4), (3, 10, 2, 1), (2, 6, 16, 8)],
)
def test_each_worker_gets_its_share_of_the_cores(jobs, targets, cores, expected):
    assert threads_per_worker(jobs, targets, cores) == expected


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity mask here")
def test_usable_cores_follow_the_affinity_mask():
    assert usable_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("threads", [None, 1])
def test_checks_come_back_in_order_and_raise_on_the_caller(threads):
    relay = ProgressRelay(lambda step: None)
    queue = CheckQueue(threads, relay)
    try:
        queue.submit(lambda: "first")
        queue.submit(lambda: 1 / 0)
        queue.submit(lambda: "third")
        with pytest.raises(ZeroDivisionError):
            queue.results()
        assert [f.result() for f in (queue.futures[0], queue.futures[2])] == ["first", "third"]
    finally:
        queue.close()


def test_checks_run_one_at_a_time_beside_the_exports_and_two_at_once_after_them():
    """Before results() (the exports still run) a queued check waits for the one running; once
    the caller waits for the results, the next one starts beside it, a third waits for one of
    the two to end, and they start in the order they were submitted."""
    may_end = {index: threading.Event() for index in range(3)}
    started = {index: threading.Event() for index in range(3)}
    order: list[int] = []

    def check(index: int) -> int:
        order.append(index)
        started[index].set()
        assert may_end[index].wait(10)
        return index

    queue = CheckQueue(1, ProgressRelay(lambda step: None))
    waiting = ThreadPoolExecutor(1)
    try:
        for index in range(3):
            queue.submit(lambda index=index: check(index))
        assert started[0].wait(10)
        assert not started[1].wait(0.3)
        results = waiting.submit(queue.results)
        assert started[1].wait(10)
        assert not started[2].wait(0.3)
        may_end[1].set()
        assert started[2].wait(10)
        assert not results.done()
        may_end[0].set()
        may_end[2].set()
        assert results.result(timeout=10) == [0, 1, 2]
    finally:
        for event in may_end.values():
            event.set()
        queue.close()
        waiting.shutdown()
    assert order == [0, 1, 2]
    assert TAIL_CHECKS == 2


def test_progress_from_the_checks_thread_waits_for_the_owner():
    shown: list[str] = []
    relay = ProgressRelay(shown.append)
    worker = threading.Thread(target=relay, args=("from the checks",))
    worker.start()
    worker.join()
    assert shown == []
    relay("from the owner")
    assert shown == ["from the checks", "from the owner"]


def test_overlapping_changes_nothing_in_the_report():
    """One core granted: no overlap; two: the checks run beside the exports. Same report, and
    torch's thread count comes back as it was."""
    previous = torch.get_num_threads()
    reports = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model, inputs = build_sample("bad_batchnorm_no_running_stats")
            formats = ["onnx-legacy", "torchscript-trace", "torchscript-script"]
            reports.append(exportcheck.validate(model, inputs, formats=formats, devices="cpu"))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(previous)
    assert reports[0].comparisons and report_summary(reports[0]) == report_summary(reports[1])


def test_onnx_files_export_first_and_checks_that_run_torch_start_after_torch_export():
    """A runtime in a process of its own compiles each ONNX file while the later formats export,
    and torch.export (which turns mkldnn and nnpack off process-wide while it traces) has ended
    before any check runs torch beside an export. The report keeps the order asked for."""
    from exportcheck.export.exporters import FORMATS
    from exportcheck.pipeline.validation import EXPORT_ORDER

    assert sorted(EXPORT_ORDER) == sorted(FORMATS)
    asked = ["torchscript-script", "exported-program", "torchscript-trace", "onnx-legacy", "onnx"]
    steps: list[str] = []
    model, inputs = build_sample("cnn")
    report = exportcheck.validate(
        model,
        inputs,
        formats=asked,
        devices="cpu",
        runtimes=["onnxruntime", "torch"],
        probes=False,
        progress=steps.append,
    )
    exported = [step.rsplit(": export ", 1)[1] for step in steps if ": export " in step]
    assert exported == list(EXPORT_ORDER)
    torch_export_ended = steps.index("model: inspect exported-program")
    torch_checks = [i for i, step in enumerate(steps) if step.endswith(" on torch cpu")]
    assert len(torch_checks) == 3 and min(torch_checks) > torch_export_ended
    assert list(dict.fromkeys(c.artifact_format for c in report.comparisons)) == asked
