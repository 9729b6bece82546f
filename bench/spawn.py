"""Launcher: runs argv as a child of this small process, writes its wall time and peak RSS.

A child's ru_maxrss also counts the memory of the process it was forked from (Linux keeps
the pre-exec high-water mark), so the benchmark, which holds large graphs, never spawns the
measured tool itself: this stdlib-only process (run with -I -S, a few MiB) does.
Usage: python -I -S spawn.py RESULT.json PROGRAM [ARGS...]; exits with the child's status.
"""

import json
import os
import shutil
import sys
import time


def main() -> int:
    result_path, argv = sys.argv[1], sys.argv[2:]
    program = shutil.which(argv[0]) or argv[0]
    start = time.perf_counter()
    pid = os.posix_spawn(program, argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    with open(result_path, "w") as handle:
        json.dump({"seconds": seconds, "maxrss_kib": usage.ru_maxrss, "code": code}, handle)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
