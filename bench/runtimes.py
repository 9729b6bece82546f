"""What each optional runtime adds to `validate` of the sample models, against ONNX Runtime's
comparison time measured in the same run: `python bench/runtimes.py [--rounds N]`.

ONNX Runtime's comparison time is its import (in a fresh process, as a CI step pays it) plus,
for every ONNX artifact of every sample (dynamo and legacy exports, made once), loading it and
the runs and comparisons `validate` makes on it: twice on the example inputs, once at a second
batch size, once per other dynamic dimension. The eval-mode references are computed before
timing; rounds alternate the runtimes.

Each runtime is measured two ways:
- **work**: the same comparisons, one artifact after another, on that runtime (a runtime in a
  process of its own pays its messages too, and its import is its process's start);
- **added to validate**: `exportcheck validate` of the five samples with `--runtimes
  onnxruntime,torch`, and again with the runtime added, each a CLI run in a fresh process, the
  runs of a round in alternating order; the median of the rounds' differences. With
  `--all-formats` every format exports, as a plain `validate` does: the target's measure, what
  a user waits for (`bench/run.py` runs it). Without it, `--formats onnx,onnx-legacy`: only
  ONNX artifacts reach these runtimes, and the other formats' exports, which a runtime's
  compiles hide behind, are left out; that is the runtime's worst case. It is noisy (each
  validate takes seconds, and this machine's speed drifts by a tenth), so its spread and a
  bootstrap interval of the median are printed beside it; the target is called met or missed
  only when the whole interval is on one side of it, and only after at least five rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_steadiness

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_models"
# Only the ONNX artifacts reach OpenVINO and tract; the other formats' exports would only give
# their loads more to overlap with.
ONNX_FORMATS = ("onnx", "onnx-legacy")
TARGET = 1.3  # OpenVINO's cost at most this many times ONNX Runtime's comparison time
# Below this many validate rounds the bootstrap interval of the median is too narrow to trust
# (one round collapses it to a point), so no verdict is given.
SETTLED_ROUNDS = 5
NAMES = ("bad_batchnorm_no_running_stats", "bad_functional_dropout", "cnn", "lstm", "transformer")
SAMPLE_TARGETS = tuple(f"{SAMPLES / name}.py:build" for name in NAMES)


def import_seconds(package: str) -> float:
    """The import of a runtime's package in a fresh interpreter (best of three)."""
    code = f"import time; t = time.perf_counter(); import {package}; print(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return min(runs)


def validate_seconds(
    specs: list[str], runtimes: list[str], report: str, formats: tuple[str, ...]
) -> float:
    """A CLI run of `exportcheck validate` of every target on these runtimes, in a fresh
    process (which starts each runtime's own process afresh), as a user runs it."""
    command = [
        sys.executable,
        "-m",
        "exportcheck",
        "validate",
        *specs,
        *(["--formats", ",".join(formats)] if formats else []),
        "--device",
        "cpu",
        "--runtimes",
        ",".join(runtimes),
        "-o",
        f"json={report}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: the bad samples' findings
        raise SystemExit(f"validate failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds


def added_to_validate(
    specs: list[str], names: list[str], rounds: int, formats: tuple[str, ...]
) -> dict[str, list[float]]:
    """Per runtime, each round's validate time with it less the time without, the runs of a
    round in alternating order; `formats` empty: every format, as a plain validate."""
    base = ["onnxruntime", "torch"]
    added: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "report.json")
        validate_seconds(specs, base + names, report, formats)  # warm-up: the file cache, bytecode
        for index in range(rounds):
            plan = [None, *names] if index % 2 == 0 else [*names[::-1], None]
            seconds = {
                name: validate_seconds(specs, base + ([name] if name else []), report, formats)
                for name in plan
            }
            for name in names:
                added[name].append(seconds[name] - seconds[None])
    return added


def median_interval(values: list[float], level: float = 0.9) -> tuple[float, float]:
    """A bootstrap interval of the median: where the median of rounds like these falls, so
    that a target is called met or missed only when the whole interval is on one side."""
    import numpy as np

    draws = np.random.default_rng(0).choice(values, size=(10_000, len(values)))
    medians = np.median(draws, axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


def prepared(folder: str, targets: list[str]) -> list[tuple[object, str, str]]:
    """(model run, path, format) for each sample's ONNX exports, references warm."""
    from exportcheck.comparison.reference import ModelRun, Tolerances, quiet_progress
    from exportcheck.export.exporters import SUFFIXES, Exporter
    from exportcheck.targets.python_targets import build_target

    cases = []
    for index, spec in enumerate(targets):
        name = f"{index}-" + spec.rsplit(":", 1)[-1]
        target = build_target(spec)
        model = target.model.eval()
        ctx = ModelRun(model, target.inputs, name, Tolerances(), False, quiet_progress)
        exporter = Exporter(model, target.inputs)
        for fmt in ("onnx", "onnx-legacy"):
            exported = exporter.export(fmt, os.path.join(folder, name + SUFFIXES[fmt]))
            cases.append((ctx, exported.path, fmt))
    return cases


def comparison_seconds(runtime: object, cases: list) -> float:
    from exportcheck.comparison.artifact_checks import (
        _dimension_variants,
        check_runner,
        declared_shapes,
        runners_for,
    )

    start = time.perf_counter()
    for ctx, path, fmt in cases:
        shapes = declared_shapes(path, "onnx", None)
        variants, _ = _dimension_variants(ctx, shapes, fmt)
        for attempt in runners_for(path, "onnx", ["cpu"], None, [runtime]):
            if attempt.runner is not None:
                check_runner(
                    ctx,
                    attempt.runner,
                    artifact=path,
                    artifact_format=fmt,
                    dynamic_batch=shapes.batch_is_dynamic,
                    dimension_variants=variants,
                )
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--validate-rounds",
        type=int,
        help="rounds of the added-to-validate runs (default: --rounds); each takes a CLI "
        "validate per runtime, about 13 s here",
    )
    parser.add_argument(
        "--added",
        nargs="*",
        help="the runtimes whose cost to validate is measured (default: every optional one)",
    )
    parser.add_argument(
        "--targets",
        nargs="*",
        help="file.py:callable targets instead of the sample models (e.g. bench/models.py:resnet18); "
        "the 1.3x target is for the sample models",
    )
    parser.add_argument(
        "--all-formats",
        action="store_true",
        help="added to validate: every format, as a plain validate exports (default: the ONNX "
        "formats only, which leave a runtime the fewest exports to overlap with)",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from exportcheck.comparison.runtimes import RUNTIMES

    steadiness = {"start": cpu_steadiness()}

    installed = [r for r in RUNTIMES if r.installed() and "onnx" in r.kinds]
    optional = [r.name for r in installed if r.name != "onnxruntime"]
    targets = list(args.targets or SAMPLE_TARGETS)
    with tempfile.TemporaryDirectory() as folder:
        cases = prepared(folder, targets)
        for runtime in installed:  # warm-up: imports, first sessions, the references
            comparison_seconds(runtime, cases)
        times: dict[str, list[float]] = {r.name: [] for r in installed}
        for index in range(args.rounds):
            for runtime in installed if index % 2 == 0 else installed[::-1]:
                times[runtime.name].append(comparison_seconds(runtime, cases))
    imports = {r.name: import_seconds(r.package) for r in installed}
    validate_rounds = args.validate_rounds or args.rounds
    formats = () if args.all_formats else ONNX_FORMATS
    added = added_to_validate(targets, args.added or optional, validate_rounds, formats)
    steadiness["end"] = cpu_steadiness()
    base = statistics.median(times["onnxruntime"]) + imports["onnxruntime"]
    what = "the sample models" if not args.targets else ", ".join(args.targets)
    print(f"## Runtimes added to validate of {what} ({len(cases)} ONNX artifacts)\n")
    exported = "every format" if args.all_formats else f"--formats {','.join(ONNX_FORMATS)}"
    print(f"Added to validate: `exportcheck validate` with {exported}.\n")
    print(
        f"ONNX Runtime's comparison time: {base:.2f} s (import {imports['onnxruntime']:.2f} s, "
        f"comparisons {statistics.median(times['onnxruntime']):.2f} s, median of "
        f"{args.rounds} rounds).\n"
    )
    print(
        "CPU steadiness (3 s of fixed 1 ms slices): "
        + "; ".join(f"at {when}, {text}" for when, text in steadiness.items())
        + ".\n"
    )
    print(
        "| runtime | work: import s | work: comparisons s | work x ONNX Runtime "
        f"| added to validate s (median of {validate_rounds}; min, max) "
        "| added x ONNX Runtime (90% interval) | target |"
    )
    print("|---|---|---|---|---|---|---|")
    failed = False
    for runtime in installed:
        median = statistics.median(times[runtime.name])
        work = (median + imports[runtime.name]) / base
        cells = ["", "", ""]
        if runtime.name in added:
            runs = added[runtime.name]
            ratio = statistics.median(runs) / base
            low, high = (bound / base for bound in median_interval(runs))
            cells = [
                f"{statistics.median(runs):.2f} ({min(runs):.2f}, {max(runs):.2f})",
                f"{ratio:.2f} ({low:.2f}, {high:.2f})",
                "",
            ]
            if runtime.name == "openvino" and not args.targets:
                if len(runs) < SETTLED_ROUNDS:
                    verdict = f"unsettled ({len(runs)} of {SETTLED_ROUNDS} rounds)"
                elif high <= TARGET:
                    verdict = "met"
                elif low > TARGET:
                    verdict = "MISSED"
                else:
                    verdict = "unsettled"
                failed |= verdict != "met"
                cells[2] = f"<= {TARGET}x: {verdict}"
        print(
            f"| {runtime.describe()} | {imports[runtime.name]:.2f} | {median:.2f} | {work:.2f} "
            f"| {' | '.join(cells)} |"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
