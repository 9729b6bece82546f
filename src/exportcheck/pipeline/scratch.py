"""Where `validate` writes the artifacts it deletes when it is done: in memory when they fit.

On a machine whose temporary folder is on disk, the kernel throttles a process that writes
faster than the disk takes the data back, though these files are deleted seconds later: a 44 MB
file took 0.2 to 0.4 s in `/tmp` here once a few had been written, against 0.02 s in
`/dev/shm`. A validate of ResNet-18 writes five of them.

A memory-backed folder is used only when the artifacts fit in half its free space and a quarter
of the memory still available (a container's cgroup v2 limit included), and when the user has
not chosen a temporary folder with TMPDIR, TEMP or TMP; workers each get their share. Docker's
default 64 MB `/dev/shm` therefore holds only small models' artifacts.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

MEMORY_FOLDER = "/dev/shm"
"""Linux's memory-backed (tmpfs) folder for POSIX shared memory; where a system lacks it,
`os.statvfs` fails and the temporary folder is used."""

TEMP_VARIABLES = ("TMPDIR", "TEMP", "TMP")

# What an artifact holds besides the weights (the graph, its names, the archive's entries).
GRAPH_ALLOWANCE_BYTES = 4 * 2**20
ROOM_FOR_TMPFS = 2  # the artifacts may take at most half of the folder's free space
ROOM_FOR_MEMORY = 4  # and at most a quarter of the memory still available

memory_root: str | None = MEMORY_FOLDER if sys.platform == "linux" else None
"""Where in-memory scratch folders are made; None: never in memory. A worker process sets it to
a folder its parent made there and removes, even after a kill, as it sets `tempfile.tempdir`."""

memory_sharers = 1
"""How many processes may write their artifacts there at once (a worker: the number of workers):
each is held to its share of the room."""


def weight_bytes(model: Any) -> int:
    """The bytes of the model's parameters and buffers, each shared tensor counted once; a size
    that cannot be known (a lazy module's parameter not yet materialised) counts as unbounded."""
    seen: set[int] = set()
    total = 0
    tensors: Iterable[Any] = (*model.parameters(), *model.buffers())
    for tensor in tensors:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        try:
            total += tensor.numel() * tensor.element_size()
        except (ValueError, RuntimeError):
            return sys.maxsize
    return total


def artifact_bytes(model: Any, artifacts: int) -> int:
    """What `artifacts` exports of `model` are expected to take on disk: each holds the weights
    once, and its graph."""
    return artifacts * (weight_bytes(model) + GRAPH_ALLOWANCE_BYTES)


def memory_folder_for(needed_bytes: int) -> str | None:
    """A memory-backed folder to write `needed_bytes` of temporary files into, or None: then
    the usual temporary folder."""
    root = _allowed_root()
    if root is None:
        return None
    try:
        stats = os.statvfs(root)
    except OSError:
        return None
    claimed = needed_bytes * max(1, memory_sharers)
    if claimed * ROOM_FOR_TMPFS > stats.f_bavail * stats.f_frsize:
        return None
    available = available_memory_bytes()
    if available is None or claimed * ROOM_FOR_MEMORY > available:
        return None
    return root if os.access(root, os.W_OK | os.X_OK) else None


def make_memory_scratch(prefix: str) -> str | None:
    """A fresh private folder under `memory_root` (for a worker, whose parent removes it), or
    None where memory may not be used."""
    root = _allowed_root()
    if root is None:
        return None
    try:
        return tempfile.mkdtemp(prefix=prefix, dir=root)
    except OSError:
        return None


def _allowed_root() -> str | None:
    """`memory_root`, unless the user chose a temporary folder."""
    if any(os.environ.get(name) for name in TEMP_VARIABLES):
        return None
    return memory_root


def available_memory_bytes() -> int | None:
    """MemAvailable, or less where the cgroup v2 limit this process sees at /sys/fs/cgroup (a
    container's own) leaves less; None where /proc/meminfo cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            available = next(
                int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:")
            )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as limit_file:
            limit = limit_file.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as current_file:
            current = int(current_file.read().strip())
    except (OSError, ValueError):
        return available
    if limit == "max":
        return available
    try:
        return min(available, max(0, int(limit) - current))
    except ValueError:
        return available
