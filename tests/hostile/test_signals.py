"""SIGTERM and SIGHUP clean up as Ctrl-C does, and no worker outlives its parent (real
`exportcheck` processes; the proofs are the temporary folder and the process table)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.processes import FAST, write_target

# Blocks in the middle of the legacy ONNX export, when the artifact folder exists, after
# writing a marker the test waits for.
HANGS_IN_EXPORT = """
import os
import time

import torch
from torch import nn


class Hangs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            open(os.environ["MARKER"], "w").write(str(os.getpid()))
            time.sleep(120)
        return self.fc(x)
"""

# Blocks in build(), with a child process of its own, recording both pids.
HANGS_IN_BUILD = """
import os
import subprocess
import time

import torch
from torch import nn
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited: only its parent has not reaped it yet.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(path: Path, process: subprocess.Popen, limit: float = 120) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if process.poll() is not None:
            raise AssertionError(f"exited early: {process.communicate()}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the target never reached its marker")


def start(args: list[str], tmp_path: Path, marker: Path) -> subprocess.Popen:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "MARKER": str(marker)}
    return subprocess.Popen(
        [sys.executable, "-m", "exportcheck", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_termination_signal_removes_the_artifact_folder(tmp_path, signum, code):
    target = write_target(
        tmp_path,
        "hangs",
        "def build():\n    return Hangs(), (torch.ones(1, 4),)\n",
        model=HANGS_IN_EXPORT,
    )
    marker = tmp_path / "marker"
    process = start(["validate", str(target), *FAST], tmp_path, marker)
    wait_for(marker, process)
    assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("exportcheck-")]
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"terminated by signal {int(signum)}" in stderr.splitlines()[-1]
    assert list((tmp_path / "tmp").iterdir()) == []


WORKER_BUILD = """
def build():
    child = subprocess.Popen(
        ["sleep", "120"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with open(os.environ["MARKER"], "w") as handle:
        handle.write(f"{os.getpid()} {child.pid}")
    time.sleep(120)
"""


def test_sigterm_ends_the_worker_process_group(tmp_path):
    target = write_target(tmp_path, "worker", WORKER_BUILD, model=HANGS_IN_BUILD)
    marker = tmp_path / "marker"
    process = start(["validate", str(target), *FAST, "--timeout", "300"], tmp_path, marker)
    worker, grandchild = map(int, wait_for(marker, process).split())
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    deadline = time.monotonic() + 10
    while (alive(worker) or alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker) and not alive(grandchild)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_worker_does_not_outlive_a_killed_parent(tmp_path):
    target = write_target(tmp_path, "worker", WORKER_BUILD, model=HANGS_IN_BUILD)
    marker = tmp_path / "marker"
    process = start(["validate", str(target), *FAST, "--timeout", "300"], tmp_path, marker)
    worker, grandchild = map(int, wait_for(marker, process).split())
    process.kill()  # SIGKILL: no handler, no cleanup in the parent
    process.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker)
    os.kill(grandchild, signal.SIGKILL)  # the user's own child is the user's to end
