"""Comparison results: measured metrics per output, the tolerance, and the verdict derived from both."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any


def relative_figure(difference: float, scale: float) -> str:
    """`relative 1.6e-06 to the magnitude 7.5e+07`, or "" where there is no difference or no
    scale to divide by: the one way a difference is read against the magnitude of the values
    compared."""
    if not difference or not scale or not math.isfinite(difference) or not math.isfinite(scale):
        return ""
    return f"relative {difference / scale:.2g} to the magnitude {scale:.3g}"


def relative_text(difference: float, scale: float) -> str:
    """`120 (relative 1.6e-06 to the magnitude 7.5e+07)`: an absolute difference with its
    relative figure."""
    figure = relative_figure(difference, scale)
    return f"{difference:.3g} ({figure})" if figure else f"{difference:.3g}"


def largest_difference(comparisons: Iterable[Comparison]) -> str | None:
    """The largest max abs among the comparisons, with its figure relative to the magnitude of
    that comparison's reference output; None when none was measured."""
    measured = [c.metrics for c in comparisons if c.metrics.max_abs is not None]
    if not measured:
        return None
    largest = max(measured, key=lambda m: m.max_abs or 0.0)
    return relative_text(largest.max_abs or 0.0, largest.magnitude or 0.0)


@dataclass(frozen=True)
class Tolerance:
    """What a comparison is judged at, and where it came from. `noise` is the model's own
    measured rounding noise when the tolerance was widened from it."""

    rtol: float
    atol: float
    source: str = "dtype default"
    noise: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rtol": self.rtol, "atol": self.atol, "source": self.source, "noise": self.noise}


class NotRejudgeable(ValueError):
    """Metrics that cannot decide a verdict at a tolerance other than the one they counted at."""


@dataclass(frozen=True)
class OutputMetrics:
    """What was measured for one output, apart from any verdict.

    `mismatched` counts elements with |actual - expected| > atol + rtol * |expected| at the
    tolerance in `counted_at` (rtol, atol). `envelope` holds the (|expected|, |difference|)
    points that decide the verdict at every tolerance (see `judge`); None when the difference
    is not finite everywhere, when there were too many points to keep, or for metrics made by
    hand. `magnitude` is the largest finite |expected|: the scale the difference is read against
    (`relative`), unlike `max_rel`, which divides each element's difference by its own size.
    """

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
    counted_at: tuple[float, float] | None = None
    envelope: tuple[tuple[float, float], ...] | None = None
    magnitude: float | None = None

    @property
    def relative(self) -> float | None:
        """max_abs as a share of the magnitude of the reference output; None without both."""
        if self.max_abs is None or not self.magnitude:
            return None
        return self.max_abs / self.magnitude

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
            "counted_at": list(self.counted_at) if self.counted_at is not None else None,
            "envelope": [list(p) for p in self.envelope] if self.envelope is not None else None,
            "magnitude": self.magnitude,
        }


def judge(metrics: OutputMetrics, tolerance: Tolerance) -> bool:
    """The verdict: same shape, no NaN/Inf the reference lacks, and every element within
    atol + rtol * |expected|.

    Exact at any tolerance when the metrics hold their envelope: every element passes exactly
    when every envelope point does. Without one, the mismatch count decides, and only at the
    tolerance it was counted at, unless max_abs <= atol or max_rel <= rtol already proves a pass;
    anything else raises NotRejudgeable with the reason.
    """
    if not metrics.shape_ok or metrics.nonfinite > metrics.expected_nonfinite:
        return False
    if metrics.max_abs is None:
        return metrics.total == 0
    if metrics.max_abs != metrics.max_abs or metrics.max_abs == float("inf"):
        return False
    if metrics.envelope is not None:
        return all(d <= tolerance.atol + tolerance.rtol * e for e, d in metrics.envelope)
    if metrics.counted_at is None or metrics.counted_at == (tolerance.rtol, tolerance.atol):
        return metrics.mismatched == 0
    if metrics.max_abs <= tolerance.atol or (
        metrics.max_rel is not None and metrics.max_rel <= tolerance.rtol
    ):
        return True
    raise NotRejudgeable(
        f"mismatches were counted at rtol={metrics.counted_at[0]:g} "
        f"atol={metrics.counted_at[1]:g} and no margin envelope was kept (more than the "
        f"points kept, or none recorded), so rtol={tolerance.rtol:g} atol={tolerance.atol:g} "
        "cannot be decided without the tensors"
    )


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

    def rejudged(self, tolerance: Tolerance) -> Comparison:
        """The same measurement judged at another tolerance; NotRejudgeable when the metrics
        cannot decide it exactly."""
        judge(self.metrics, tolerance)
        return replace(self, tolerance=tolerance)

    @property
    def artifact_label(self) -> str:
        batch = f" (batch {self.batch_size})" if self.batch_size is not None else ""
        return f"{self.artifact_format}{batch}"

    @property
    def configuration(self) -> str:
        """`onnxruntime/CPU/cpu/disable_all`: the runtime configuration it ran in."""
        parts = [self.runtime]
        if self.provider:
            parts.append(self.provider.replace("ExecutionProvider", ""))
        parts.append(self.device)
        if self.optimization:
            parts.append(self.optimization)
        return "/".join(parts)

    @property
    def runtime_label(self) -> str:
        return self.configuration if self.run == "compare" else f"{self.configuration}/{self.run}"

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
