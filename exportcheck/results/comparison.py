"""Comparison results: measured metrics per output, the tolerance, and the verdict derived from both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    source: str = "dtype default"

    def to_dict(self) -> dict[str, Any]:
        return {"rtol": self.rtol, "atol": self.atol, "source": self.source}


@dataclass(frozen=True)
class OutputMetrics:
    """What was measured for one output. `mismatched` counts elements outside the tolerance
    the comparison was judged at (|actual - expected| > atol + rtol * |expected|)."""

    shape: tuple[int, ...] | None
    expected_shape: tuple[int, ...] | None
    dtype: str | None
    expected_dtype: str | None
    max_abs: float | None
    max_rel: float | None
    mismatched: int
    total: int
    nonfinite: int = 0
    expected_nonfinite: int = 0

    @property
    def shape_ok(self) -> bool:
        return self.shape == self.expected_shape

    @property
    def mismatch_share(self) -> float:
        return self.mismatched / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape) if self.shape is not None else None,
            "expected_shape": list(self.expected_shape)
            if self.expected_shape is not None
            else None,
            "dtype": self.dtype,
            "expected_dtype": self.expected_dtype,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "mismatched": self.mismatched,
            "total": self.total,
            "mismatch_share": self.mismatch_share,
            "nonfinite": self.nonfinite,
            "expected_nonfinite": self.expected_nonfinite,
        }


def judge(metrics: OutputMetrics, tolerance: Tolerance) -> bool:
    """The verdict: same shape, no element beyond tolerance, no NaN/Inf the reference lacks.

    `max_abs <= atol` or `max_rel <= rtol` is enough to pass at any tolerance, which is how a
    saved report is re-judged without the tensors.
    """
    if not metrics.shape_ok or metrics.nonfinite > metrics.expected_nonfinite:
        return False
    if metrics.max_abs is None:
        return metrics.total == 0
    if metrics.max_abs <= tolerance.atol or (
        metrics.max_rel is not None and metrics.max_rel <= tolerance.rtol
    ):
        return True
    return metrics.mismatched == 0


@dataclass(frozen=True)
class Comparison:
    """One artifact output, on one runtime/provider/device/optimization level, against a reference."""

    subject: str
    artifact: str | None
    artifact_format: str
    runtime: str
    device: str
    output: str
    metrics: OutputMetrics
    tolerance: Tolerance
    provider: str | None = None
    optimization: str | None = None
    reference: str = "pytorch-eval"
    batch_size: int | None = None
    run: str = "compare"

    @property
    def passed(self) -> bool:
        return judge(self.metrics, self.tolerance)

    @property
    def artifact_label(self) -> str:
        batch = f" (batch {self.batch_size})" if self.batch_size is not None else ""
        return f"{self.artifact_format}{batch}"

    @property
    def runtime_label(self) -> str:
        parts = [self.runtime]
        if self.provider:
            parts.append(self.provider.replace("ExecutionProvider", ""))
        parts.append(self.device)
        if self.optimization:
            parts.append(self.optimization)
        if self.run != "compare":
            parts.append(self.run)
        return "/".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "artifact": self.artifact,
            "format": self.artifact_format,
            "runtime": self.runtime,
            "provider": self.provider,
            "device": self.device,
            "optimization_level": self.optimization,
            "reference": self.reference,
            "run": self.run,
            "batch_size": self.batch_size,
            "output": self.output,
            "metrics": self.metrics.to_dict(),
            "tolerance": self.tolerance.to_dict(),
            "passed": self.passed,
        }
