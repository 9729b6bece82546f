"""Where `validate` writes the artifacts it deletes: in memory when they fit, else the
temporary folder; a folder the user chose with TMPDIR is kept."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

import exportcheck
from exportcheck.pipeline import scratch
from exportcheck.pipeline.scratch import (
    TEMP_VARIABLES,
    available_memory_bytes,
    memory_folder_for,
    weight_bytes,
)

needs_meminfo = pytest.mark.skipif(
    available_memory_bytes() is None, reason="no /proc/meminfo to read the available memory from"
)


@pytest.fixture
def memory(tmp_path, monkeypatch):
    """A folder standing in for /dev/shm, with no temporary folder chosen by the user."""
    folder = tmp_path / "memory"
    folder.mkdir()
    for name in TEMP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(scratch, "memory_root", str(folder))
    return folder


def test_a_tied_weight_counts_once_and_buffers_count():
    embedding = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = embedding.weight
    model = nn.Sequential(embedding, nn.BatchNorm1d(4), head)
    floats = 10 * 4 + 4 + 4 + 4 + 4  # the shared table, BN's weight, bias, mean and variance
    assert weight_bytes(model) == floats * 4 + 8  # and num_batches_tracked, an int64


def test_a_size_that_cannot_be_known_never_fits_in_memory(memory):
    lazy = nn.Sequential(nn.LazyLinear(3))
    assert memory_folder_for(weight_bytes(lazy)) is None


@needs_meminfo
def test_what_fits_goes_to_memory_and_what_does_not_stays_in_the_temporary_folder(memory):
    assert memory_folder_for(2**20) == str(memory)
    # A quarter of the available memory is the most the artifacts may take.
    assert memory_folder_for(available_memory_bytes()) is None


@pytest.mark.parametrize("variable", TEMP_VARIABLES)
def test_a_temporary_folder_the_user_chose_is_kept(memory, monkeypatch, variable):
    monkeypatch.setenv(variable, str(memory.parent))
    assert memory_folder_for(1) is None
    assert scratch.make_memory_scratch("exportcheck-worker-") is None


def test_without_a_memory_folder_the_temporary_folder_is_used(memory, monkeypatch):
    monkeypatch.setattr(scratch, "memory_root", None)
    assert memory_folder_for(1) is None
    monkeypatch.setattr(scratch, "memory_root", str(memory / "missing"))
    assert memory_folder_for(1) is None
    assert scratch.make_memory_scratch("exportcheck-worker-") is None


def _validate_listing(memory):
    """Validates a small model to ONNX, listing the memory folder at each step."""
    seen: set[str] = set()

    def progress(step: str) -> None:
        seen.update(path.name for path in memory.iterdir())

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    report = exportcheck.validate(
        model,
        (torch.randn(2, 4),),
        formats=["onnx", "torchscript-trace"],
        runtimes=["onnxruntime", "torch"],
        probes=False,
        progress=progress,
    )
    return report, seen


@needs_meminfo
def test_validate_keeps_its_temporary_artifacts_in_memory_and_removes_them(memory):
    report, seen = _validate_listing(memory)
    assert report.ok and {c.artifact_format for c in report.comparisons} == {
        "onnx",
        "torchscript-trace",
    }
    assert any(name.startswith("exportcheck-") for name in seen), seen
    assert list(memory.iterdir()) == []


@needs_meminfo
def test_validate_writes_artifacts_too_large_for_memory_to_the_temporary_folder(
    memory, monkeypatch
):
    monkeypatch.setattr(scratch, "GRAPH_ALLOWANCE_BYTES", 2**62)
    report, seen = _validate_listing(memory)
    assert report.ok and report.comparisons
    assert seen == set()


@needs_meminfo
def test_each_worker_writes_in_a_memory_folder_its_parent_removes(memory):
    from exportcheck.pipeline.parallel import run_targets
    from tests.conftest import SAMPLES

    seen: set[str] = set()

    def progress(step: str) -> None:
        seen.update(
            f"{worker.name}/{inner.name}"
            for worker in memory.iterdir()
            for inner in (worker.iterdir() if worker.is_dir() else ())
        )

    targets = [f"{SAMPLES}/{name}.py:build" for name in ("cnn", "lstm")]
    report = run_targets(
        targets,
        jobs=2,
        progress=progress,
        formats=["onnx-legacy"],
        devices="cpu",
        runtimes=["onnxruntime"],
    )
    assert report.ok and len(report.subjects) == 2
    assert any(
        worker.startswith("exportcheck-worker-") and inner.startswith("exportcheck-")
        for worker, _, inner in (name.partition("/") for name in seen)
    ), seen
    assert list(memory.iterdir()) == []


@needs_meminfo
def test_processes_sharing_the_memory_folder_are_each_held_to_their_share(memory, monkeypatch):
    stats = os.statvfs(memory)
    fits_alone = min(available_memory_bytes() // 8, stats.f_bavail * stats.f_frsize // 4)
    assert memory_folder_for(fits_alone) == str(memory)
    monkeypatch.setattr(scratch, "memory_sharers", 4)
    assert memory_folder_for(fits_alone) is None
