"""Benchmark rows for first-divergence localization, measured side by side in one run.

On ResNet-18 and a 6-layer transformer encoder (bench/models.py, no torchvision needed), each
exported with torch's dynamo ONNX exporter:
- exportcheck's comparison of the artifact (static rules, ONNX Runtime at both optimization
  levels, a repeat run, the eval-mode reference): the baseline localization is held to, <= 3x;
- `localize` on the same artifact (one ORT session at ORT_DISABLE_ALL, the model's program run
  node by node);
- torch's `verify_onnx_program(compare_intermediates=True)`: localization must be >= 10x faster;
- `localize` on the legacy exporter's graph of the same model, with its share of values paired;
- peak RSS of a process that only compares against one that compares and then localizes, on
  the transformer, beside the bytes of all its intermediate values: localization must add less
  than those (it compares as it goes).

Usage: python bench/localize.py [--models resnet18,transformer] [--skip-verify]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

COMPARISON_LIMIT = 3.0
VERIFY_SPEEDUP = 10.0


def _quiet():
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    return contextlib.redirect_stdout(io.StringIO())


def build(name: str):
    import models

    model, inputs = getattr(models, name)()
    return model.eval(), inputs


def export(model, inputs, path: str):
    import torch

    with _quiet():
        program = torch.onnx.export(model, inputs, dynamo=True, verbose=False)
        program.save(path)
    return program


def comparison(model, inputs, path: str) -> float:
    """Seconds of exportcheck's comparison of one ONNX artifact on the CPU."""
    from exportcheck.comparison.artifact_checks import inspect_and_compare_artifact
    from exportcheck.comparison.reference import ModelRun, Tolerances, quiet_progress

    ctx = ModelRun(model, inputs, "bench", Tolerances(), False, quiet_progress)
    start = time.perf_counter()
    inspect_and_compare_artifact(
        ctx, path, "onnx", ["cpu"], dynamic_batch=False, artifact_label=path
    )
    return time.perf_counter() - start


def localization(model, inputs, path: str) -> tuple[float, object]:
    from exportcheck.localization import localize

    start = time.perf_counter()
    trace = localize(model, path, "onnx", inputs, "onnx")
    return time.perf_counter() - start, trace


def legacy_localization(model, inputs, stem: str) -> tuple[float, object]:
    """`localize` on the legacy exporter's graph of the same model: how many of its values
    the scoped node names pair (the rest counted by reason)."""
    import torch

    from exportcheck.localization import localize

    path = f"{stem}.legacy.onnx"
    with _quiet():
        torch.onnx.export(model, inputs, path, dynamo=False)
    start = time.perf_counter()
    trace = localize(model, path, "onnx", inputs, "onnx-legacy")
    return time.perf_counter() - start, trace


def verification(program) -> float:
    from torch.onnx.verification import verify_onnx_program

    start = time.perf_counter()
    with _quiet():
        verify_onnx_program(program, compare_intermediates=True)
    return time.perf_counter() - start


def intermediate_bytes(model, inputs) -> int:
    """The bytes of every value the model's program computes: what keeping them all costs."""
    from exportcheck.localization.reference import model_program

    program = model_program(model, inputs)
    total = 0
    for node in program.graph.nodes:
        value = node.meta.get("val")
        if node.op == "call_function" and hasattr(value, "numel"):
            total += int(value.numel()) * int(value.element_size())
    return total


def peak_rss(step: str, name: str, path: str) -> int:
    """Peak RSS (bytes) of a fresh process that compares, then localizes if asked."""
    code = (
        "import sys, resource; sys.path.insert(0, sys.argv[1]);"
        "import localize as b; m, i = b.build(sys.argv[2]); b._quiet();"
        "b.comparison(m, i, sys.argv[3]);"
        "(sys.argv[4] == 'localize') and b.localization(m, i, sys.argv[3]);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(BENCH), name, path, step],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    return int(result.stdout.split()[-1]) * 1024


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/localize.py", description=__doc__)
    parser.add_argument("--models", default="resnet18,transformer")
    parser.add_argument("--skip-verify", action="store_true")
    args = parser.parse_args(argv)
    rows, failed = [], False
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            model, inputs = build(name)
            path = os.path.join(folder, f"{name}.onnx")
            program = export(model, inputs, path)
            compared = comparison(model, inputs, path)
            localized, trace = localization(model, inputs, path)
            row = {
                "model": name,
                "comparison_s": round(compared, 3),
                "localize_s": round(localized, 3),
                "localize_over_comparison": round(localized / compared, 2),
                "matched": f"{trace.matched}/{trace.candidates}",
            }
            legacy_s, legacy = legacy_localization(model, inputs, os.path.join(folder, name))
            row["legacy_localize_s"] = round(legacy_s, 3)
            row["legacy_matched"] = f"{legacy.matched}/{legacy.candidates}"
            row["legacy_unmatched"] = dict(legacy.unmatched)
            ok = localized <= COMPARISON_LIMIT * compared
            row["comparison_verdict"] = verdict(ok)
            failed |= not ok
            if not args.skip_verify:
                verified = verification(program)
                row["verify_onnx_program_s"] = round(verified, 3)
                row["speedup_over_verify"] = round(verified / localized, 1)
                ok = verified >= VERIFY_SPEEDUP * localized
                row["verify_verdict"] = verdict(ok)
                failed |= not ok
            if name == "transformer":
                only = peak_rss("compare", name, path)
                both = peak_rss("localize", name, path)
                everything = intermediate_bytes(model, inputs)
                row["peak_rss_compare_mib"] = round(only / 2**20, 1)
                row["peak_rss_compare_and_localize_mib"] = round(both / 2**20, 1)
                row["all_intermediates_mib"] = round(everything / 2**20, 1)
                ok = both - only < everything
                row["memory_verdict"] = verdict(ok)
                failed |= not ok
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"localization bench: {'FAIL' if failed else 'PASS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
