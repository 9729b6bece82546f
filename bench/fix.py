"""The `fix` row: `exportcheck fix`'s rewrite and static proof on the generated 100k-node graph
against `inspect` of the same file, measured in one process, alternating (each goes first in
every other pair), in the same run, after one untimed run of each.

    python bench/fix.py [--nodes 100000] [--repeats 9]

The verdict is the ratio of the two medians; every run's times, each pair's ratio and the load
average before and after are printed too, since the machine may be shared.

What is timed for fix: the node-by-node decisions, the rewrite, the atomic write of the
repaired file and the re-inspection of that file (the proof's static step). Each run writes a
new file, as one `fix -o FIXED` does (replacing the previous run's output would add the
filesystem's release of the old file, about 6 ms on ext4, to the row). The proof's
runtime steps (ONNX Runtime sessions at two optimization levels, or the comparison with the
model) are not in the row: they run the graph, which `inspect` never does.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import load_average  # noqa: E402
from synth import make_graph_file  # noqa: E402

LIMIT = 2.0  # fix <= 2x inspect


def _timed(work) -> float:
    gc.collect()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/fix.py", description=__doc__)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    from exportcheck.graph_checks import inspect_artifact
    from exportcheck.pipeline.repairing import static_proof
    from exportcheck.repair import repair_artifact

    with tempfile.TemporaryDirectory(prefix="exportcheck-bench-fix-") as folder:
        graph = make_graph_file(folder, args.nodes, f"{args.nodes // 1000}k")
        outputs = (str(Path(folder) / f"fixed-{run}.onnx") for run in itertools.count())

        def inspect() -> None:
            inspect_artifact(graph.path)

        def fix() -> None:
            result = repair_artifact(graph.path, next(outputs))
            assert static_proof(result).passed

        inspect()
        fix()  # imports and first-use caches, for both
        load_before = load_average()
        inspect_times, fix_times = [], []
        for run in range(args.repeats):
            if run % 2:
                fix_times.append(_timed(fix))
                inspect_times.append(_timed(inspect))
            else:
                inspect_times.append(_timed(inspect))
                fix_times.append(_timed(fix))
        load_after = load_average()
        changed = len(repair_artifact(graph.path, next(outputs)).changed)
    inspect_s, fix_s = statistics.median(inspect_times), statistics.median(fix_times)
    ratio = fix_s / inspect_s
    pairs = [f / i for f, i in zip(fix_times, inspect_times, strict=True)]
    verdict = "met" if ratio <= LIMIT else "MISSED"
    print(f"graph: {graph.nodes} nodes, {changed} nodes changed by fix")
    print(f"load average before {load_before}, after {load_after}")
    print("inspect s: " + " ".join(f"{t:.3f}" for t in inspect_times))
    print("fix s:     " + " ".join(f"{t:.3f}" for t in fix_times))
    print("fix/inspect per pair: " + " ".join(f"{r:.2f}" for r in pairs))
    print(
        f"inspect median {inspect_s:.3f} s, fix median {fix_s:.3f} s ({args.repeats} runs each); "
        f"median of the pairs' ratios {statistics.median(pairs):.2f}x"
    )
    print(f"| fix time <= {LIMIT}x inspect, {graph.label} | {ratio:.2f}x | {verdict} |")
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
