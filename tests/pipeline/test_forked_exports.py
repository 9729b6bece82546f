"""Exports split with a forked copy: the copy's artifacts, and its checks of those that run in
torch, make the same report as exports and checks made here, and a copy that dies or stalls costs
nothing but time."""

from __future__ import annotations

import gc
import os
import sys
import threading

import pytest
import torch
from torch import nn

import exportcheck
from exportcheck.export.exporters import FORMATS
from exportcheck.pipeline import forked_exports
from exportcheck.pipeline.forked_exports import fork_allowed
from exportcheck.pipeline.overlap import usable_cores
from tests.conftest import report_summary

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or usable_cores() < 2,
    reason="exports are split with a forked copy only on Linux with two cores granted",
)

RUNTIMES = ["onnxruntime", "torch"]


def _write_pid(log: str) -> None:
    with open(log, "a") as handle:
        handle.write(f"{os.getpid()}\n")


def _leave_if_copy(owner: int, how: str) -> None:
    """In a process other than `owner`: exits, or never returns; "exits while checking" waits
    for an eager run (a reference the copy's check computes), past the exporters' traces."""
    if os.getpid() == owner or (how == "exits while checking" and torch.jit.is_tracing()):
        return
    if how == "stalls":
        threading.Event().wait()
    os._exit(0)


class RecordsItsProcess(nn.Module):
    """Writes the id of each process that runs its forward (outside TorchScript) to `log`."""

    def __init__(self, log: str) -> None:
        super().__init__()
        self.log = log
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            _write_pid(self.log)
        return self.drop(self.bn(self.conv(x)).relu())


class LeavesInACopy(nn.Module):
    """Runs normally in the process that built it; in any other, it exits or never returns."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.owner = os.getpid()
        self.how = how
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            _leave_if_copy(self.owner, self.how)
        return self.bn(self.conv(x)).relu()


def _validate_with_threads(threads: int, model: nn.Module) -> exportcheck.Report:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return exportcheck.validate(
            model, torch.randn(2, 3, 8, 8), devices="cpu", runtimes=RUNTIMES, probes=False
        )
    finally:
        torch.set_num_threads(previous)


def _children() -> set[int]:
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.add(int(entry))
    return found


def test_a_forked_copy_exports_the_other_formats_and_the_report_is_the_same(tmp_path, capfd):
    log = tmp_path / "pids.txt"
    torch.manual_seed(0)
    model = RecordsItsProcess(str(log))
    state = {k: v.clone() for k, v in model.state_dict().items()}

    alone = _validate_with_threads(1, model)
    assert set(log.read_text().split()) == {str(os.getpid())}
    log.write_text("")
    split = _validate_with_threads(2, model)

    assert str(os.getpid()) in log.read_text().split()
    assert len(set(log.read_text().split())) == 2, "a second process ran the model's forward"
    assert alone.comparisons and {c.artifact_format for c in split.comparisons} == set(FORMATS)
    assert report_summary(split) == report_summary(alone)
    assert model.training and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert capfd.readouterr().out == ""


def test_objects_the_caller_froze_stay_frozen(tmp_path):
    log = tmp_path / "pids.txt"
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        _validate_with_threads(2, RecordsItsProcess(str(log)))
        assert len(set(log.read_text().split())) == 2
        # frozen objects still die when their last reference goes; thawed, none would be left
        assert gc.get_freeze_count() > frozen // 2
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("how", ["exits", "stalls", "exits while checking"])
def test_what_a_copy_did_not_export_and_check_is_done_here(how, monkeypatch):
    monkeypatch.setattr(forked_exports, "STALLED_S", 1.0)
    torch.manual_seed(0)
    before = _children()
    alone = _validate_with_threads(1, LeavesInACopy(how))
    torch.manual_seed(0)
    split = _validate_with_threads(2, LeavesInACopy(how))
    assert {c.artifact_format for c in split.comparisons} == set(FORMATS)
    assert report_summary(split) == report_summary(alone)
    assert _children() <= before, "the copy was reaped"


@pytest.mark.parametrize(
    ("formats", "threads", "model_bytes", "allowed"),
    [
        (FORMATS, 1, 1 << 20, True),
        (FORMATS, None, 1 << 20, False),
        (("onnx",), 1, 1 << 20, False),
        (("onnx-legacy", "torchscript-trace"), 1, 1 << 20, False),
        (("onnx", "exported-program"), 3, 1 << 20, True),
        (FORMATS, 1, sys.maxsize, False),
    ],
    ids=["all", "no-threads", "onnx-alone", "no-dynamo", "two", "no-memory"],
)
def test_a_copy_is_forked_only_beside_the_dynamo_export_with_threads_and_memory(
    formats, threads, model_bytes, allowed
):
    assert fork_allowed(formats, threads, model_bytes) is allowed
