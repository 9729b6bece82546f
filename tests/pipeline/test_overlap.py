"""Exports overlapping artifact checks: how threads are divided, and that overlapping changes
nothing in the report."""

from __future__ import annotations

import os
import threading

import pytest
import torch

import exportcheck
from exportcheck.pipeline.overlap import (
    CheckQueue,
    ProgressRelay,
    overlap_threads,
    threads_per_worker,
    usable_cores,
)
from tests.conftest import build_sample


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


def test_progress_from_the_checks_thread_waits_for_the_owner():
    shown: list[str] = []
    relay = ProgressRelay(shown.append)
    worker = threading.Thread(target=relay, args=("from the checks",))
    worker.start()
    worker.join()
    assert shown == []
    relay("from the owner")
    assert shown == ["from the checks", "from the owner"]


def _summary(report):
    return (
        sorted(
            (f.rule, f.location.module or "", f.location.runtime or "") for f in report.findings
        ),
        sorted(
            (c.artifact_format, c.runtime_label, c.output, c.batch_size, c.run, c.passed)
            for c in report.comparisons
        ),
        sorted((s.step, s.reason) for s in report.skipped),
    )


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
    assert reports[0].comparisons and _summary(reports[0]) == _summary(reports[1])
