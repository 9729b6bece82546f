"""Runs a command as a fresh process (through spawn.py) and collects its wall time and peak RSS."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

OK_CODES = (0,)
SPAWN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spawn.py")


@dataclass(frozen=True)
class Run:
    """One child process: seconds from spawn to reaping, peak RSS, exit code (None: timed out)."""

    seconds: float
    rss_mib: float
    returncode: int | None
    error: str = ""


@dataclass(frozen=True)
class Command:
    """A labelled argv; `ok_codes` are the exit codes that count as a successful run."""

    label: str
    argv: Sequence[str]
    ok_codes: tuple[int, ...] = OK_CODES
    timeout: float = 180.0
    failure: str = "error"  # how a failed run is reported: "error", "not available"...
    cwd: str | None = None
    env: dict[str, str] | None = None


@dataclass
class Measurement:
    """The runs of one command; statistics are medians over the successful runs."""

    command: Command
    runs: list[Run] = field(default_factory=list)

    @property
    def good(self) -> list[Run]:
        return [r for r in self.runs if r.returncode in self.command.ok_codes]

    @property
    def status(self) -> str:
        if self.good:
            return "ok"
        if not self.runs:
            return "not run"
        last = self.runs[-1]
        if last.returncode is None:
            return "timeout"
        return f"{self.command.failure} (exit {last.returncode})"

    @property
    def seconds(self) -> float | None:
        good = self.good
        return statistics.median(r.seconds for r in good) if good else None

    @property
    def rss_mib(self) -> float | None:
        good = self.good
        return statistics.median(r.rss_mib for r in good) if good else None

    @property
    def spent(self) -> float:
        return sum(r.seconds for r in self.runs)


def _spawn(command: Command, result_path: str, stderr) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", SPAWN, result_path, *command.argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        cwd=command.cwd,
        env=command.env,
        start_new_session=True,  # one process group: a timeout kills launcher and tool
    )


def run_once(command: Command) -> Run:
    """Runs the command once through the launcher; a timeout kills its whole process group."""
    with tempfile.TemporaryDirectory() as folder:
        result_path = os.path.join(folder, "run.json")
        with open(os.path.join(folder, "stderr"), "w+b") as stderr:
            proc = _spawn(command, result_path, stderr)
            try:
                proc.wait(timeout=command.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return Run(command.timeout, 0.0, None, "timeout")
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-3:]
        try:
            with open(result_path) as handle:
                result = json.load(handle)
        except (OSError, ValueError):  # the launcher could not start the tool
            return Run(0.0, 0.0, proc.returncode or 127, " | ".join(tail))
    return Run(result["seconds"], result["maxrss_kib"] / 1024, result["code"], " | ".join(tail))


def measure_round_robin(
    commands: Sequence[Command],
    repeats: int,
    budget: float,
    log: Callable[[Command, Run], None] | None = None,
) -> list[Measurement]:
    """Runs the commands in turn, `repeats` rounds, so background noise hits them alike.

    A command stops repeating once it failed or its runs took more than `budget` seconds.
    """
    results = [Measurement(c) for c in commands]
    for _ in range(repeats):
        for result in results:
            if result.runs and (result.status != "ok" or result.spent > budget):
                continue
            run = run_once(result.command)
            result.runs.append(run)
            if log is not None:
                log(result.command, run)
    return results
