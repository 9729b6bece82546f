"""Fixtures for the hostile-input tests: real exported ONNX files, fuzz profiles, a case counter,
and a run of the CLI in a process of its own with its time and peak memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Profiles are only registered here; test_fuzz.py applies the chosen one to its own tests, so
# loading it never changes the hypothesis defaults of the rest of the suite.
_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "fast", max_examples=50, deadline=None, database=None, suppress_health_check=_FUZZ_HEALTH
)
settings.register_profile(
    "long", max_examples=3000, deadline=None, database=None, suppress_health_check=_FUZZ_HEALTH
)
# `soak`: 25,000 examples per test, 10**5 cases or more per fuzz file (see README.md).
settings.register_profile(
    "soak", max_examples=25_000, deadline=None, database=None, suppress_health_check=_FUZZ_HEALTH
)
FUZZ_PROFILE = os.environ.get("EXPORTCHECK_FUZZ_PROFILE", "fast")


@dataclass
class FuzzTally:
    """How many cases each fuzz test ran and how each ended; printed at the end of the run."""

    cases: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def record(self, test: str, outcome: object) -> None:
        self.cases[test] += 1
        self.outcomes["findings" if isinstance(outcome, list) else type(outcome).__name__] += 1


_TALLY = pytest.StashKey[FuzzTally]()


@pytest.fixture(scope="session")
def fuzz_tally(pytestconfig: pytest.Config) -> FuzzTally:
    return pytestconfig.stash.setdefault(_TALLY, FuzzTally())


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    tally = config.stash.get(_TALLY, None)
    if tally is None or not tally.cases:
        return
    elapsed = time.monotonic() - tally.started
    per_test = ", ".join(f"{name} {count}" for name, count in sorted(tally.cases.items()))
    endings = ", ".join(f"{name} {count}" for name, count in tally.outcomes.most_common())
    terminalreporter.write_line(
        f"exportcheck fuzz ({FUZZ_PROFILE} profile): {tally.cases.total()} cases in "
        f"{elapsed:.0f} s ({per_test}); outcomes: {endings}"
    )


def _small_cnn():
    import torch
    from torch import nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.drop = nn.Dropout(0.5)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.bn(self.conv(x))).mean((2, 3))
            return self.fc(self.drop(x))

    torch.manual_seed(0)
    return SmallCNN().train(), (torch.randn(2, 3, 8, 8),)


@pytest.fixture(scope="session")
def exported_pt2(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The same train-mode CNN saved by torch.export.save, once per session: a program with
    dropout (train=True), batch norm buffer mutations, weights and sample inputs."""
    import torch

    path = tmp_path_factory.mktemp("exported-pt2") / "cnn.pt2"
    model, args = _small_cnn()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(model, args), str(path))
    return path.read_bytes()


class Seeds(dict):
    """The exported files by name; a short repr keeps hypothesis failure reports readable."""

    def __repr__(self) -> str:
        return f"<exported ONNX seeds: {', '.join(self)}>"


@pytest.fixture(scope="session")
def exported_onnx(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    """A train-mode CNN exported once per session, as the bytes of each ONNX file.

    `legacy`: the TorchScript-based exporter with TrainingMode.PRESERVE (BatchNormalization
    with running-stat outputs, Dropout with a constant training_mode). `dynamo`: the dynamo
    exporter, weights inlined. `dynamo-external`: the same graph still pointing at its side
    file, which is not copied next to the fuzzed files (a missing-external-data case).
    """
    import onnx
    import torch

    folder = tmp_path_factory.mktemp("exported")
    model, args = _small_cnn()
    legacy = folder / "legacy.onnx"
    dynamo = folder / "dynamo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both exporters warn about the train-mode export
        torch.onnx.export(
            model, args, str(legacy), dynamo=False, training=torch.onnx.TrainingMode.PRESERVE
        )
        torch.onnx.export(model, args, str(dynamo), dynamo=True, verbose=False)
    external = onnx.load_model(str(dynamo), load_external_data=False)
    inline = onnx.load_model(str(dynamo), load_external_data=True)
    return Seeds(
        legacy=legacy.read_bytes(),
        dynamo=inline.SerializeToString(),
        **{"dynamo-external": external.SerializeToString()},
    )


# What one hostile file may cost `exportcheck inspect`, start-up included.
BUDGET_SECONDS = 10.0
BUDGET_RSS_MB = 500.0


@dataclass(frozen=True)
class Measured:
    """One `exportcheck inspect FILE` in a fresh process: how it ended and what it cost."""

    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float


# Runs the command given and writes its wall time, peak RSS and exit code to a file. A process
# forked from pytest would report pytest's own RSS as its peak (Linux carries the high-water
# mark across exec), so the CLI is a child of this small launcher instead.
_LAUNCHER = """
import os, subprocess, sys, time
started = time.monotonic()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
seconds = time.monotonic() - started
with open(sys.argv[1], "w") as out:
    out.write(f"{seconds} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def inspect_in_subprocess(path: Path, timeout: float = 120) -> Measured:
    """Runs the CLI on `path` in a fresh process and measures it (see _LAUNCHER)."""
    with tempfile.TemporaryDirectory() as folder:
        numbers = Path(folder, "measured")
        command = [sys.executable, "-m", "exportcheck", "inspect", str(path)]
        launcher = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(numbers), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=path.parent,  # away from any [tool.exportcheck] of the repository
            start_new_session=True,
        )
        try:
            stdout, stderr = launcher.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.communicate()
            raise
        seconds, rss_kb, exit_code = numbers.read_text().split()
    return Measured(
        exit_code=int(exit_code),
        stdout=stdout.decode(errors="replace"),
        stderr=stderr.decode(errors="replace"),
        seconds=float(seconds),
        peak_rss_mb=int(rss_kb) / 1024,  # kilobytes on Linux
    )


def assert_bounded(path: Path, cause: str | None = None) -> Measured:
    """Inspects a hostile file in a subprocess: it must end within the budgets, in exit 0, 1 or
    2 (never an internal error), without a traceback; an input error is one line naming the
    file (and containing `cause`, when given)."""
    measured = inspect_in_subprocess(path)
    report = f"{path.name}: {measured.seconds:.1f} s, {measured.peak_rss_mb:.0f} MB"
    assert measured.exit_code in (0, 1, 2), (
        f"{report}, exit {measured.exit_code}: {measured.stderr}"
    )
    assert "Traceback" not in measured.stdout + measured.stderr, measured.stderr
    assert measured.seconds < BUDGET_SECONDS, report
    assert measured.peak_rss_mb < BUDGET_RSS_MB, report
    if measured.exit_code == 2:
        lines = measured.stderr.splitlines()
        assert len(lines) == 1, measured.stderr
        assert lines[0].startswith(f"exportcheck: error: {path}: "), measured.stderr
    if cause is not None:
        assert measured.exit_code == 2 and cause in measured.stderr, f"{report}: {measured.stderr}"
    return measured
