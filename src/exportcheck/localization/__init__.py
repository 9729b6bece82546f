"""First-divergence localization: where an artifact starts to compute something other than the
eval-mode model, found by comparing their intermediate values in execution order.

One tracer per artifact kind, in `TRACERS`; each returns a `Localization` whose root cause is
the first value that diverges while its inputs agree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from exportcheck.localization.onnx_values import trace_onnx
from exportcheck.localization.reference import ReferenceUnavailable
from exportcheck.localization.torch_values import trace_exported_program, trace_torchscript
from exportcheck.localization.trace import Localization, Place, TracePoint

Tracer = Callable[[Any, Any, Sequence[Any], str], Localization]

TRACERS: dict[str, Tracer] = {
    "onnx": trace_onnx,
    "torchscript": trace_torchscript,
    "exported-program": trace_exported_program,
}
"""Artifact kind -> tracer(model, artifact: a path for ONNX, the loaded program otherwise,
inputs, format)."""


def localize(model: Any, artifact: Any, kind: str, inputs: Sequence[Any], fmt: str) -> Localization:
    """The trace of one artifact against the eval-mode `model` (held in eval mode by the
    caller) on `inputs`; ReferenceUnavailable when the model's values cannot be had."""
    return TRACERS[kind](model, artifact, inputs, fmt)


__all__ = ["TRACERS", "Localization", "Place", "ReferenceUnavailable", "TracePoint", "localize"]
