"""A JSON report (`Report.to_dict()`) read back into a Report: findings, comparisons, skipped
steps, errors and subjects; problems and verdicts are derived again, never read.

Paths come back as a report showed them: relative to the repository root of the run that wrote
them, library-relative (`torch/nn/modules/dropout.py`), or `<outside>/name`. Each is rebuilt as
an absolute path that the reading run shows the same way, so rendering the Report again, and
its fingerprints, give the same text whatever that run's working folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from exportcheck.results.comparison import Comparison, OutputMetrics, Tolerance
from exportcheck.results.findings import Finding, Location, Severity, Suppression
from exportcheck.results.problems import OUTSIDE
from exportcheck.results.report import InputProblem, Report, Skipped
from exportcheck.results.runtimes import RuntimeRun

# What a library-relative path is rebuilt under: `library_relative` and `Problem.source` both
# know a library file by this marker, so the first project file still names a problem.
_LIBRARY_PREFIX = "/site-packages/"


class MalformedReport(ValueError):
    """Data that is not an exportcheck JSON report."""


def report_from_dict(data: Any, root: str, cwd: str | None = None) -> Report:
    """The Report a JSON report was rendered from; MalformedReport when it is none."""
    if not isinstance(data, Mapping) or data.get("tool") != "exportcheck":
        raise MalformedReport("not an exportcheck JSON report")
    try:
        library = _library_paths(data["problems"], data["findings"])
        return Report(
            subjects=tuple(_strings(data["subjects"])),
            findings=tuple(_finding(f, root, library) for f in data["findings"]),
            comparisons=tuple(_comparison(c) for c in data["comparisons"]),
            skipped=tuple(Skipped(**s) for s in data["skipped"]),
            errors=tuple(InputProblem(**e) for e in data["errors"]),
            unused_suppressions=tuple(dict(u) for u in data["unused_suppressions"]),
            fail_on=str(data["fail_on"]),
            uncompared=tuple(_strings(data["uncompared"])),
            runtime_runs=tuple(_runtime_run(r) for r in data.get("runtimes", ())),
            root=root,
            cwd=cwd or os.getcwd(),
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise MalformedReport(f"not an exportcheck JSON report ({_reason(error)})") from None


def _runtime_run(data: Mapping[str, Any]) -> RuntimeRun:
    """A matrix cell's run; its verdict is derived again from the comparisons."""
    return RuntimeRun(
        subject=str(data["subject"]),
        artifact=data["artifact"],
        artifact_format=str(data["format"]),
        runtime=str(data["runtime"]),
        configuration=str(data["configuration"]),
        status=str(data["status"]),
        detail=data["detail"],
        version=data["version"],
        sizes=tuple(_strings(data["sizes"])),
    )


def _reason(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no {error.args[0]!r} field"
    return f"{type(error).__name__}: {error}"


def _strings(values: Sequence[Any]) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError("expected a list of strings")
    return values


def _library_paths(problems: Sequence[Any], findings: Sequence[Any]) -> set[str]:
    """The source files the report treated as library code: those a problem passed over for a
    later member's file when it chose its source (the first project file)."""
    library: set[str] = set()
    for problem in problems:
        chosen = problem["source_file"]
        if chosen is None:
            continue
        for index in problem["findings"]:
            path = findings[index]["location"]["source_file"]
            if path == chosen:
                break
            if path:
                library.add(path)
    return library


def _absolute(shown: str | None, root: str, library: set[str]) -> str | None:
    if not shown:
        return shown
    if shown in library:
        return _LIBRARY_PREFIX + shown
    if shown.startswith(OUTSIDE + "/"):
        return "/" + shown
    return os.path.join(root, *shown.split("/"))


def _location(data: Mapping[str, Any], root: str, library: set[str]) -> Location:
    artifact = data["artifact"]
    if artifact and ": " not in artifact:  # a kept artifact file, not a temporary one's label
        artifact = _absolute(artifact, root, set())
    return Location(
        artifact=artifact,
        scope=data["scope"],
        node=data["node"],
        op_type=data["op_type"],
        module=data["module"],
        module_type=data["module_type"],
        runtime=data["runtime"],
        output=data["output"],
        source_file=_absolute(data["source_file"], root, library),
        source_line=data["source_line"],
    )


def _finding(data: Mapping[str, Any], root: str, library: set[str]) -> Finding:
    suppressed = data.get("suppressed")
    return Finding(
        rule=data["rule"],
        code=data["code"],
        severity=Severity.parse(data["severity"]),
        message=data["message"],
        subject=data["subject"],
        location=_location(data["location"], root, library),
        suppressed=Suppression(suppressed["reason"], suppressed["entry"]) if suppressed else None,
        stage=data["stage"],
        detail={key: data[key] for key in ("fix", "trace") if key in data} or None,
    )


def _pair(value: Sequence[Any] | None) -> tuple[float, float] | None:
    return (float(value[0]), float(value[1])) if value is not None else None


def _shape(value: Sequence[Any] | None) -> tuple[int, ...] | None:
    return tuple(int(v) for v in value) if value is not None else None


def _metrics(data: Mapping[str, Any]) -> OutputMetrics:
    envelope = data["envelope"]
    points = tuple((float(e), float(d)) for e, d in envelope) if envelope is not None else None
    return OutputMetrics(
        shape=_shape(data["shape"]),
        expected_shape=_shape(data["expected_shape"]),
        dtype=data["dtype"],
        expected_dtype=data["expected_dtype"],
        max_abs=data["max_abs"],
        max_rel=data["max_rel"],
        mismatched=int(data["mismatched"]),
        total=int(data["total"]),
        nonfinite=int(data["nonfinite"]),
        expected_nonfinite=int(data["expected_nonfinite"]),
        counted_at=_pair(data["counted_at"]),
        envelope=points,
        magnitude=data.get("magnitude"),
    )


def _comparison(data: Mapping[str, Any]) -> Comparison:
    tolerance = data["tolerance"]
    return Comparison(
        subject=data["subject"],
        artifact=data["artifact"],
        artifact_format=data["format"],
        runtime=data["runtime"],
        device=data["device"],
        output=data["output"],
        metrics=_metrics(data["metrics"]),
        tolerance=Tolerance(
            float(tolerance["rtol"]),
            float(tolerance["atol"]),
            tolerance["source"],
            tolerance["noise"],
        ),
        provider=data["provider"],
        optimization=data["optimization_level"],
        reference=data["reference"],
        batch_size=data["batch_size"],
        run=data["run"],
    )
