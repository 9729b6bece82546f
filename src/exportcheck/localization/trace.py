"""A localization's trace: the artifact's values in execution order, each judged against the
eval-mode model's value on the same inputs, and the verdict on which one is the root cause."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from exportcheck.numerics.metrics import default_tolerance, magnitude, scaled_tolerance

AGREES = "agrees"
ROOT_CAUSE = "root-cause"
PROPAGATED = "propagated"
INDEPENDENT = "diverges-independently"
"""A later value that diverges while its own inputs agree: a second cause, reported, not blamed."""


@dataclass(frozen=True)
class Place:
    """Where an artifact value comes from: its node(s), their op types, the torch module and
    the Python line the exporter recorded (or the module's forward, where it recorded none)."""

    nodes: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()
    module: str | None = None
    module_type: str | None = None
    operation: str | None = None
    source_file: str | None = None
    source_line: int | None = None
    measured_at: str | None = None
    """Set where the values from this place on could not be compared: the value where the
    divergence was first measured."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured_at": self.measured_at,
            "nodes": list(self.nodes),
            "op_types": list(self.op_types),
            "module": self.module,
            "module_type": self.module_type,
            "operation": self.operation,
            "source_file": self.source_file,
            "source_line": self.source_line,
        }


@dataclass(frozen=True)
class TracePoint:
    """One matched value: how far the artifact's value is from the model's, how far its inputs
    were, and its verdict."""

    value: str
    place: Place
    max_abs: float | None
    max_rel: float | None
    magnitude: float
    atol: float
    inputs_max_abs: float | None
    verdict: str

    @property
    def diverges(self) -> bool:
        return self.verdict != AGREES

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            **self.place.to_dict(),
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "magnitude": self.magnitude,
            "atol": self.atol,
            "inputs_max_abs": self.inputs_max_abs,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Localization:
    """The trace of one artifact on one runtime configuration.

    `unmatched` counts the artifact values no model value could be matched to, by reason;
    `root` indexes the root cause in `points`, None when every matched value agrees."""

    artifact_format: str
    runtime: str
    method: str
    points: tuple[TracePoint, ...]
    candidates: int
    unmatched: dict[str, int] = field(default_factory=dict)

    @property
    def root(self) -> TracePoint | None:
        return next((p for p in self.points if p.verdict == ROOT_CAUSE), None)

    @property
    def matched(self) -> int:
        return len(self.points)

    @property
    def share_matched(self) -> float:
        return self.matched / self.candidates if self.candidates else 0.0

    def count(self, verdict: str) -> int:
        return sum(1 for p in self.points if p.verdict == verdict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact_format": self.artifact_format,
            "runtime": self.runtime,
            "method": self.method,
            "candidates": self.candidates,
            "matched": self.matched,
            "share_matched": self.share_matched,
            "unmatched": dict(self.unmatched),
            "propagated": self.count(PROPAGATED),
            "independent": self.count(INDEPENDENT),
            "points": [p.to_dict() for p in self.points],
        }


def difference(
    actual: np.ndarray, expected: np.ndarray, tolerance: Any
) -> tuple[float, float, bool]:
    """(max abs, max rel, diverges) of two same-shaped arrays: the verdict of `measure` without
    the margin envelope, which a trace of thousands of large values cannot afford."""
    if expected.dtype.kind not in "fc":
        equal = np.array_equal(actual, expected)
        diff = 0.0 if equal else float(np.abs(actual.astype(np.float64) - expected).max())
        return diff, 0.0 if equal else np.inf, not equal
    a = actual.astype(np.float64, copy=False)
    e = expected.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - e)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        diff[same] = 0.0
        diff[np.isnan(diff)] = np.inf
        bad = diff > tolerance.atol + tolerance.rtol * np.abs(e)
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = np.abs(e)
        rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        rel[(scale == 0) & (diff > 0)] = np.inf
        max_rel = float(rel.max()) if rel.size else 0.0
    return max_abs, max_rel, bool(bad.any())


class Walk:
    """Judges values as they arrive, in execution order, and keeps only the verdicts: the
    tensors themselves are dropped once compared, so memory follows the largest value.

    A value is tainted when it diverges or when anything it was computed from is tainted
    (through unmatched values too, by the artifact's own edges); the first diverging value
    with untainted inputs is the root cause, later ones with tainted inputs propagate it."""

    def __init__(self) -> None:
        self.points: list[TracePoint] = []
        self.unmatched: dict[str, int] = {}
        self._tainted: set[str] = set()
        self._differences: dict[str, float] = {}
        self._root_found = False
        self._unverified: dict[str, Place] = {}

    def skip(
        self, value: str, inputs: Iterable[str], reason: str, place: Place | None = None
    ) -> None:
        """A value with nothing to compare it with: counted, and tainted if its inputs are.
        Until a compared value after it agrees, it may be where a divergence starts: the first
        such value with a known place stands for it."""
        inputs = list(inputs)
        self.unmatched[reason] = self.unmatched.get(reason, 0) + 1
        if any(i in self._tainted for i in inputs):
            self._tainted.add(value)
            return
        origin = next((self._unverified[i] for i in inputs if i in self._unverified), place)
        if origin is not None:
            self._unverified[value] = origin

    def pass_through(self, value: str, inputs: Iterable[str]) -> None:
        """A value that is not a candidate (a shape, a constant): only its taint travels."""
        if any(i in self._tainted for i in inputs):
            self._tainted.add(value)

    def add(
        self, value: str, inputs: Iterable[str], actual: Any, expected: Any, place: Place
    ) -> TracePoint | None:
        inputs = list(inputs)
        a, e = np.asarray(actual), np.asarray(expected)
        if a.shape != e.shape:
            self.skip(value, inputs, "another shape than the model's value")
            return None
        if a.dtype.kind in "fc" and a.dtype != e.dtype:
            a = a.astype(e.dtype) if e.dtype.kind in "fc" else a
        tolerance = scaled_tolerance(default_tolerance(e.dtype), e)
        max_abs, max_rel, diverges = difference(a, e, tolerance)
        measured_inputs = [self._differences[i] for i in inputs if i in self._differences]
        tainted_inputs = any(i in self._tainted for i in inputs)
        if not diverges:
            verdict = AGREES
        elif tainted_inputs:
            verdict = PROPAGATED
        elif not self._root_found:
            verdict = ROOT_CAUSE
            self._root_found = True
            # Compared only after values that could not be: the divergence may start there.
            origin = next((self._unverified[i] for i in inputs if i in self._unverified), None)
            if origin is not None:
                place = replace(origin, measured_at=value)
        else:
            verdict = INDEPENDENT
        if diverges or tainted_inputs:
            self._tainted.add(value)
        self._differences[value] = max_abs
        point = TracePoint(
            value,
            place,
            max_abs,
            max_rel,
            magnitude(e),
            tolerance.atol,
            max(measured_inputs) if measured_inputs else None,
            verdict,
        )
        self.points.append(point)
        return point

    def result(
        self, artifact_format: str, runtime: str, method: str, candidates: int
    ) -> Localization:
        return Localization(
            artifact_format, runtime, method, tuple(self.points), candidates, dict(self.unmatched)
        )
