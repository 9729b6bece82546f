"""Where exportcheck's time goes: cProfile summaries and import times of one CLI run."""

from __future__ import annotations

import io
import os
import pstats
import re
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 600
# The installed package (the wheel in site-packages), as users run it.
OWN_CODE = re.escape(os.path.join(sysconfig.get_paths()["purelib"], "exportcheck") + os.sep)


def _shorten(text: str) -> str:
    """Paths relative to site-packages, the standard library or the repository."""
    paths = sysconfig.get_paths()
    for prefix in (paths["purelib"], paths["stdlib"], REPO):
        text = text.replace(prefix + os.sep, "")
    return text


def _stats_text(path: str, sort: str, rows: int, only: str | None = None) -> str:
    """The totals line, the column header and the top rows of one pstats listing.

    `only` is a regular expression the function's file path must match.
    """
    buffer = io.StringIO()
    restrictions = (only, rows) if only else (rows,)
    pstats.Stats(path, stream=buffer).sort_stats(sort).print_stats(*restrictions)
    lines = buffer.getvalue().splitlines()
    totals = next((line.strip() for line in lines if "function calls" in line), "")
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    table = [line for line in lines[start:] if line.strip()]
    return _shorten("\n".join([totals, *table]))


# The console script leaves through os._exit (no interpreter teardown), which would also skip
# `python -m cProfile`'s own dump: the app runs here under a profiler that is saved first.
_PROFILED_RUN = """
import cProfile, sys
out, sys.argv = sys.argv[1], ["exportcheck", *sys.argv[2:]]
profiler = cProfile.Profile()
profiler.enable()
try:
    from exportcheck.cli.main import app
    app()
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(out)
"""


def profile_cli(args: Sequence[str], cwd: str, rows: int = 30) -> str:
    """The CLI run under cProfile (imports included): top rows by cumulative time (all
    functions, then exportcheck's own) and by own time."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "run.prof")
        argv = [sys.executable, "-c", _PROFILED_RUN, out, *args]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT_S)
        if not os.path.exists(out):
            return f"profiling failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
        cumulative = _stats_text(out, "cumulative", rows)
        ours = _stats_text(out, "cumulative", rows, only=OWN_CODE)
        own = _stats_text(out, "tottime", rows * 2 // 3)
    text = (
        f"By cumulative time:\n{cumulative}\n\n"
        f"exportcheck's functions by cumulative time:\n{ours}\n\n"
        f"By own time:\n{own}"
    )
    if done.returncode not in (0, 1):  # the profile then shows a failed run, say so
        text = f"exit {done.returncode}: {done.stderr.strip()[-300:]}\n\n{text}"
    return text


def import_times(args: Sequence[str], cwd: str, top: int = 12) -> list[tuple[str, float]]:
    """Top-level imports of one `exportcheck ARGS` run, by cumulative milliseconds."""
    argv = [sys.executable, "-X", "importtime", "-m", "exportcheck", *args]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT_S)
    found: list[tuple[str, float]] = []
    for line in done.stderr.splitlines():
        # "import time:       self [us] |  cumulative | imported package"
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith("  ") or not cumulative.strip().isdigit():
            continue  # nested import: already inside its parent's cumulative time
        found.append((name.strip(), int(cumulative) / 1000))
    return sorted(found, key=lambda item: -item[1])[:top]
