"""What the benchmark ran on: CPU, cores, memory, package versions, commit, date."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata

PACKAGES = ("exportcheck", "torch", "onnx", "onnxruntime", "onnx-ir", "onnxscript", "polygraphy")


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
    }
    facts.update({package: _version(package) for package in PACKAGES})
    return facts
