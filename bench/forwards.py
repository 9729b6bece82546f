"""Counts the forward passes `validate` runs through each model: `python bench/forwards.py SPEC...`.

A forward hook on the user's root module (removed afterwards; copies of the model made inside
validate carry it along) counts every call, sorted by what made it: an eager run on real
tensors, an exporter's trace (torch.jit tracing, or fake tensors under torch.export), and
whether the run was in float64. Each call appends a line to a file, so that the calls made in
the copy `validate` forks to export the other formats (pipeline.forked_exports) count too.
Prints one JSON object per target.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from typing import Any


def _kind(args: tuple[Any, ...]) -> str:
    import torch
    from torch._subclasses.fake_tensor import FakeTensor

    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if torch.jit.is_tracing():
        return "trace"
    if any(isinstance(t, FakeTensor) for t in tensors) or torch.compiler.is_compiling():
        return "trace"
    if any(t.dtype == torch.float64 for t in tensors):
        return "eager float64"
    return "eager"


def count_forwards(spec: str, **options: Any) -> dict[str, Any]:
    """validate() of one target with every root forward counted by kind."""
    from exportcheck.pipeline.validation import validate
    from exportcheck.targets.python_targets import build_target

    target = build_target(spec, (), None)
    with tempfile.TemporaryDirectory() as folder:
        calls = os.path.join(folder, "calls")

        def hook(_module: Any, args: tuple[Any, ...], _output: Any) -> None:
            with open(calls, "a") as log:
                log.write(_kind(args) + "\n")

        handle = target.model.register_forward_hook(hook)
        try:
            report = validate(target.model, target.inputs, subject=spec, devices="cpu", **options)
        finally:
            handle.remove()
        counts: Counter[str] = Counter()
        if os.path.exists(calls):
            with open(calls) as log:
                counts.update(log.read().splitlines())
    return {
        "target": spec,
        "eager": counts["eager"],
        "eager float64": counts["eager float64"],
        "trace": counts["trace"],
        "ok": report.ok,
        "findings": sorted({f.rule for f in report.findings}),
    }


if __name__ == "__main__":
    for spec in sys.argv[1:]:
        print(json.dumps(count_forwards(spec)), flush=True)
