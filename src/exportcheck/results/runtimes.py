"""The runtime matrix: what each artifact did on each runtime configuration. Whether it matched
or differed is derived from the comparisons, like their verdicts from the metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exportcheck.results.comparison import Comparison

RAN, REFUSED, CRASHED, SKIPPED = "ran", "refused", "crashed", "skipped"


@dataclass(frozen=True)
class RuntimeRun:
    """One artifact given to one runtime configuration (`openvino/CPU/cpu`): it ran, the runtime
    refused it (load, compile or run; `detail` is its reason), exportcheck's adapter for it
    crashed (`detail`: the error), or it was skipped (`detail`: why). `sizes` lists the
    dimension sizes it was run at besides the example (`batch=3`, `seq=11`)."""

    subject: str
    artifact: str | None
    artifact_format: str
    runtime: str
    configuration: str
    status: str
    detail: str | None = None
    version: str | None = None
    sizes: tuple[str, ...] = ()

    @property
    def runner_label(self) -> str:
        """`onnx on openvino/CPU/cpu`: as numerical findings name where they ran."""
        return f"{self.artifact_format} on {self.configuration}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "artifact": self.artifact,
            "format": self.artifact_format,
            "runtime": self.runtime,
            "configuration": self.configuration,
            "status": self.status,
            "detail": self.detail,
            "version": self.version,
            "sizes": list(self.sizes),
        }


def configuration_of(comparison: Comparison) -> str:
    parts = [comparison.runtime]
    if comparison.provider:
        parts.append(comparison.provider.replace("ExecutionProvider", ""))
    parts.append(comparison.device)
    if comparison.optimization:
        parts.append(comparison.optimization)
    return "/".join(parts)


@dataclass(frozen=True)
class MatrixCell:
    """A run and its verdict: matches, differs (with the largest difference), refuses,
    crashes or skipped."""

    run: RuntimeRun
    verdict: str
    max_abs: float | None = None
    failed: int = 0
    compared: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.run.to_dict(),
            "verdict": self.verdict,
            "max_abs": self.max_abs,
            "failed_comparisons": self.failed,
            "comparisons": self.compared,
        }


_VERDICTS = {REFUSED: "refuses", CRASHED: "crashes", SKIPPED: "skipped"}


def runtime_matrix(
    runs: Sequence[RuntimeRun], comparisons: Sequence[Comparison]
) -> tuple[MatrixCell, ...]:
    """Each run with its verdict, from the comparisons made in its configuration."""
    by_key: dict[tuple[str, str | None, str, str], list[Comparison]] = {}
    for comparison in comparisons:
        key = (
            comparison.subject,
            comparison.artifact,
            comparison.artifact_format,
            configuration_of(comparison),
        )
        by_key.setdefault(key, []).append(comparison)
    cells = []
    for run in runs:
        if run.status != RAN:
            cells.append(MatrixCell(run, _VERDICTS.get(run.status, run.status)))
            continue
        made = by_key.get((run.subject, run.artifact, run.artifact_format, run.configuration), [])
        failing = [c for c in made if not c.passed]
        worst = [c.metrics.max_abs for c in failing if c.metrics.max_abs is not None]
        cells.append(
            MatrixCell(
                run,
                "differs" if failing else "matches",
                max(worst) if worst else None,
                len(failing),
                len(made),
            )
        )
    return tuple(cells)
