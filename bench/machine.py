"""What the benchmark ran on: CPU, cores, memory, package versions, commit, date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from importlib import metadata

PACKAGES = (
    "exportcheck",
    "torch",
    "onnx",
    "ml_dtypes",
    "onnxruntime",
    "onnx-ir",
    "onnxscript",
    "polygraphy",
)


def _proc_field(path: str, key: str) -> str | None:
    try:
        with open(path) as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def _memory() -> str:
    total = _proc_field("/proc/meminfo", "MemTotal")  # "24570000 kB"
    if not total:
        return "unknown"
    return f"{int(total.split()[0]) / 1024**2:.1f} GiB"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit(repo: str) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (uncommitted changes)" if dirty else head


def load_average() -> str:
    """1, 5 and 15 minute load averages: how busy the (possibly shared) machine was."""
    try:
        return " / ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


# A CPU is called slow in a slice that took this much longer than the machine's fastest slice.
_SLOW_SLICE = 1.35


def _slice() -> float:
    start = time.perf_counter()
    total = 0
    for value in range(20_000):
        total += value * value
    return time.perf_counter() - start


def cpu_steadiness(seconds: float = 3.0) -> str:
    """How steady one core's speed is: the share of a fixed pure-Python slice of work (about
    1 ms) that ran at least 1.35x slower than the fastest, over a few seconds. A shared virtual
    machine's core can slow by half for a fraction of a second at a time (a neighbour on the
    same physical core), which no load average shows, and which moves the ratio of two
    commands of a few seconds each by more than some targets' margins."""
    slices: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        slices.append(_slice())
    ordered = sorted(slices)
    fastest = ordered[0]
    slow = sum(1 for taken in slices if taken >= _SLOW_SLICE * fastest) / len(slices)
    median = ordered[len(ordered) // 2]
    slowest = ordered[int(len(ordered) * 0.99)]
    return (
        f"{slow:.0%} of {len(slices)} slices slow; median {median / fastest:.2f}x, "
        f"99th percentile {slowest / fastest:.2f}x the fastest"
    )


def describe(repo: str) -> dict[str, str]:
    """Facts for the report header; versions come from package metadata, nothing is imported."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    facts = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": f"{cores} usable ({os.cpu_count()} online)",
        "memory": _memory(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "commit": _commit(repo),
        "load average at start (1/5/15 min)": load_average(),
        "CPU steadiness at start (3 s)": cpu_steadiness(),
    }
    facts.update({package: _version(package) for package in PACKAGES})
    return facts
