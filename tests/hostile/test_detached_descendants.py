"""Processes a target detaches from its worker (`setsid()`, a daemon's double fork, a new
session) do not outlive `exportcheck --jobs 2`, whether the run ends normally or by SIGTERM
(real `exportcheck` processes; the proof is the process table)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.cli.processes import FAST, PLAIN_BUILD, exportcheck, write_target
from tests.hostile.test_signals import HANGS_IN_BUILD, alive, start, wait_for

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a child subreaper is Linux only"
)

# Writes the grandchild's pid to $PIDFILE (whole, by rename) before build() returns.
PIDFILE_WRITER = """
import os
import subprocess
import time


def record(pid):
    partial = os.environ["PIDFILE"] + ".partial"
    with open(partial, "w") as handle:
        handle.write(str(pid))
    os.replace(partial, os.environ["PIDFILE"])


def wait_for_pidfile():
    while not os.path.exists(os.environ["PIDFILE"]):
        time.sleep(0.02)
"""

DOUBLE_FORK_DAEMON = PIDFILE_WRITER + PLAIN_BUILD.replace(
    "def build():\n",
    """def build():
    first = os.fork()
    if first == 0:
        if os.fork() == 0:
            os.setsid()
            # As a daemon does: a pipe it kept open would hold up whoever reads exportcheck.
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            record(os.getpid())
            time.sleep(300)
        os._exit(0)
    os.waitpid(first, 0)
    wait_for_pidfile()
""",
)

NEW_SESSION_SLEEP = PIDFILE_WRITER + PLAIN_BUILD.replace(
    "def build():\n",
    """def build():
    sleeper = subprocess.Popen(
        ["sleep", "300"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    record(sleeper.pid)
""",
)


def gone_soon(pid: int, limit: float = 10) -> bool:
    """Not running, and not a zombie (a zombie left to init is reaped at once)."""
    deadline = time.monotonic() + limit
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def end(pid: int) -> None:
    """A test that fails must not leave its sleeper behind."""
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "body", [DOUBLE_FORK_DAEMON, NEW_SESSION_SLEEP], ids=["double-fork-setsid", "new-session"]
)
def test_a_detached_grandchild_ends_with_the_run(tmp_path: Path, body: str) -> None:
    detaches = write_target(tmp_path, "detaches", body)
    plain = write_target(tmp_path, "plain", PLAIN_BUILD)
    pidfile = tmp_path / "grandchild.pid"
    done = exportcheck(
        "validate",
        f"{detaches}:build",
        f"{plain}:build",
        *FAST,
        "--jobs",
        "2",
        "--quiet",
        env={"PIDFILE": str(pidfile)},
        timeout=300,
    )
    grandchild = int(pidfile.read_text())
    try:
        assert done.returncode == 0, done.stderr
        assert gone_soon(grandchild), f"pid {grandchild} outlived exportcheck"
    finally:
        end(grandchild)


DETACHES_THEN_HANGS = """
def build():
    sleeper = subprocess.Popen(
        ["sleep", "300"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with open(os.environ["MARKER"], "w") as handle:
        handle.write(f"{os.getpid()} {sleeper.pid}")
    time.sleep(120)
"""


def test_sigterm_ends_a_detached_grandchild(tmp_path: Path) -> None:
    target = write_target(tmp_path, "detaches", DETACHES_THEN_HANGS, model=HANGS_IN_BUILD)
    plain = write_target(tmp_path, "plain", PLAIN_BUILD)
    marker = tmp_path / "marker"
    process = start(
        ["validate", f"{target}:build", f"{plain}:build", *FAST, "--jobs", "2"], tmp_path, marker
    )
    worker, grandchild = map(int, wait_for(marker, process).split())
    try:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 143, stderr
        assert gone_soon(worker) and gone_soon(grandchild)
        assert list((tmp_path / "tmp").iterdir()) == []
    finally:
        end(grandchild)
