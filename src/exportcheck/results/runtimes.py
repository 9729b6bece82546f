"""The runtime matrix: what each artifact did on each runtime configuration. Whether it matched
or differed is derived from the comparisons, like their verdicts from the metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exportcheck.results.comparison import Comparison
from exportcheck.results.findings import Finding

RAN, REFUSED, CRASHED, SKIPPED = "ran", "refused", "crashed", "skipped"
_RUNS_ON = " on "


def runner_label(artifact_format: str, configuration: str) -> str:
    """`onnx on openvino/CPU/cpu`: an artifact format and the configuration it ran in, as
    numerical findings name where they ran (`location.runtime`)."""
    return f"{artifact_format}{_RUNS_ON}{configuration}"


def runtime_configuration(label: str) -> str:
    """The configuration of a runner label (`openvino/CPU/cpu` of `onnx on openvino/CPU/cpu`);
    a label without an artifact format is a configuration already."""
    return label.partition(_RUNS_ON)[2] or label


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
        return runner_label(self.artifact_format, self.configuration)

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


@dataclass(frozen=True)
class MatrixCell:
    """A run and its verdict: matches, differs (with the largest difference), refuses,
    crashes or skipped; `batch_statistics` where a finding says its outputs follow the batch."""

    run: RuntimeRun
    verdict: str
    max_abs: float | None = None
    failed: int = 0
    compared: int = 0
    batch_statistics: bool = False

    @property
    def shown(self) -> str:
        """The verdict as a matrix cell shows it."""
        return f"{self.verdict} (batch stats)" if self.batch_statistics else self.verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.run.to_dict(),
            "verdict": self.verdict,
            "max_abs": self.max_abs,
            "failed_comparisons": self.failed,
            "comparisons": self.compared,
            "batch_statistics": self.batch_statistics,
        }


_VERDICTS = {REFUSED: "refuses", CRASHED: "crashes", SKIPPED: "skipped"}


BATCH_STATISTICS_RULE = "runtime-batch-statistics"


def runtime_matrix(
    runs: Sequence[RuntimeRun], comparisons: Sequence[Comparison], findings: Sequence[Finding] = ()
) -> tuple[MatrixCell, ...]:
    """Each run with its verdict, from the comparisons made in its configuration (and the
    findings that say it computes batch statistics)."""
    batch_dependent = {
        (f.subject, f.location.artifact, f.location.runtime)
        for f in findings
        if f.rule == BATCH_STATISTICS_RULE
    }
    by_key: dict[tuple[str, str | None, str, str], list[Comparison]] = {}
    for comparison in comparisons:
        key = (
            comparison.subject,
            comparison.artifact,
            comparison.artifact_format,
            comparison.configuration,
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
                (run.subject, run.artifact, run.runner_label) in batch_dependent,
            )
        )
    return tuple(cells)


# Which verdict a cell of several configurations (optimization levels, devices) shows.
_WORST_FIRST = ("refuses", "crashes", "differs", "matches", "skipped")


@dataclass(frozen=True)
class MatrixRow:
    """One artifact of one subject, and its verdict on each runtime: the worst over that
    runtime's configurations."""

    subject: str
    artifact_format: str
    verdicts: dict[str, str]


def matrix_rows(cells: Sequence[MatrixCell]) -> tuple[tuple[str, ...], list[MatrixRow]]:
    """The runtimes (columns, in the order they ran) and one row per subject and artifact."""
    runtimes = tuple(dict.fromkeys(cell.run.runtime for cell in cells))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for cell in cells:
        verdicts = rows.setdefault((cell.run.subject, cell.run.artifact_format), {})
        earlier = verdicts.get(cell.run.runtime)
        if earlier is None or _WORST_FIRST.index(cell.verdict) < _WORST_FIRST.index(
            earlier.split(" (")[0]
        ):
            verdicts[cell.run.runtime] = cell.shown
    return runtimes, [MatrixRow(s, f, v) for (s, f), v in rows.items()]


def refusals(cells: Sequence[MatrixCell]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(runtime, reason, artifact formats) for each distinct refusal or crash."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for cell in cells:
        if cell.verdict in ("refuses", "crashes") and cell.run.detail:
            formats = reasons.setdefault((cell.run.runtime, cell.run.detail), [])
            if cell.run.artifact_format not in formats:
                formats.append(cell.run.artifact_format)
    return [(runtime, reason, tuple(f)) for (runtime, reason), f in reasons.items()]
