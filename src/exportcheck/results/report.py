"""The Report: findings, comparisons and skipped steps of one run, the problems they group into,
and the exit code those imply."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from exportcheck.errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_OK
from exportcheck.results.catalogue import RuleDescriptor
from exportcheck.results.findings import Finding, Severity
from exportcheck.results.problems import Problem, group_problems, repository_root

if TYPE_CHECKING:  # a static inspection runs on no runtime and need not load the matrix
    from exportcheck.results.runtimes import MatrixCell, RuntimeRun

FAIL_ON_CHOICES = ("error", "warning", "info", "never")


def fail_threshold(fail_on: str) -> Severity | None:
    if fail_on == "never":
        return None
    return Severity.parse(fail_on)


@dataclass(frozen=True)
class Skipped:
    """A step that did not run, and why (an exporter's error, a missing device or provider)."""

    subject: str
    step: str
    reason: str
    artifact: str | None = None
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InputProblem:
    """A subject that could not be checked at all, with the one-line cause and its exit code."""

    subject: str
    message: str
    exit_code: int = EXIT_INPUT
    error: str = "InputError"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    subjects: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    comparisons: tuple[Any, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    errors: tuple[InputProblem, ...] = ()
    unused_suppressions: tuple[dict[str, Any], ...] = ()
    fail_on: str = "error"
    tool: str = "exportcheck"
    rules: tuple[RuleDescriptor, ...] = ()
    """The catalogue of the rules this run applied, for reporters that document them."""
    root: str = field(default_factory=repository_root, compare=False)
    """The folder paths are shown relative to: the repository the run's working directory is
    in (the nearest folder with `.git`), else that working directory."""
    cwd: str = field(default_factory=os.getcwd, compare=False)
    """The run's working directory, which relative paths in findings are relative to."""

    @cached_property
    def problems(self) -> tuple[Problem, ...]:
        """The findings grouped by root cause (derived, like a comparison's verdict)."""
        return group_problems(self.findings, self.comparisons)

    @cached_property
    def active_problems(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.suppressed is None)

    def problem_counts(self) -> dict[str, int]:
        counts = {severity.label: 0 for severity in sorted(Severity, reverse=True)}
        for problem in self.active_problems:
            counts[problem.severity.label] += 1
        return counts

    def failing_problems(self, fail_on: str | None = None) -> tuple[Problem, ...]:
        threshold = fail_threshold(fail_on or self.fail_on)
        if threshold is None:
            return ()
        return tuple(p for p in self.active_problems if p.severity >= threshold)

    def failed_subjects(self, fail_on: str | None = None) -> tuple[str, ...]:
        """Subjects with a failing problem or an input error, in report order."""
        failed = {p.subject for p in self.failing_problems(fail_on)}
        failed |= {e.subject for e in self.errors}
        ordered = dict.fromkeys((*self.subjects, *(p.subject for p in self.problems)))
        ordered.update(dict.fromkeys(e.subject for e in self.errors))
        return tuple(s for s in ordered if s in failed)

    def rule(self, slug: str) -> RuleDescriptor | None:
        return next((r for r in self.rules if r.slug == slug), None)

    # Subjects that were to be compared numerically and got no comparison at all (every one
    # skipped: no device, no runtime, no export); a failure when comparisons are required.
    uncompared: tuple[str, ...] = ()
    require_comparisons: bool = False
    runtime_runs: tuple[RuntimeRun, ...] = ()
    """Each artifact on each runtime configuration, for the runtime matrix."""

    @property
    def runtime_matrix(self) -> tuple[MatrixCell, ...]:
        """Each artifact on each runtime, with its verdict (derived from the comparisons)."""
        if not self.runtime_runs:
            return ()
        from exportcheck.results.runtimes import runtime_matrix

        return runtime_matrix(self.runtime_runs, self.comparisons, self.findings)

    @property
    def every_comparison_skipped(self) -> bool:
        return bool(self.uncompared) and not self.comparisons

    @cached_property
    def active_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.suppressed is None)

    def counts(self) -> dict[str, int]:
        counts = {severity.label: 0 for severity in sorted(Severity, reverse=True)}
        for finding in self.active_findings:
            counts[finding.severity.label] += 1
        return counts

    def failing_findings(self, fail_on: str | None = None) -> tuple[Finding, ...]:
        threshold = fail_threshold(fail_on or self.fail_on)
        if threshold is None:
            return ()
        return tuple(f for f in self.active_findings if f.severity >= threshold)

    def exit_code(self, fail_on: str | None = None) -> int:
        if self.errors:
            return max(problem.exit_code for problem in self.errors)
        if self.require_comparisons and self.uncompared:
            return EXIT_FINDINGS
        return EXIT_FINDINGS if self.failing_problems(fail_on) else EXIT_OK

    @property
    def ok(self) -> bool:
        return self.exit_code() == EXIT_OK

    def with_fail_on(self, fail_on: str) -> Report:
        return replace(self, fail_on=fail_on)

    def to_dict(self) -> dict[str, Any]:
        from exportcheck import __version__

        counts = self.counts()
        return {
            "tool": self.tool,
            "version": __version__,
            "subjects": list(self.subjects),
            "problems": [p.to_dict(self.root, self.cwd) for p in self.problems],
            "findings": [f.to_dict(self.root, self.cwd) for f in self.findings],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "skipped": [s.to_dict() for s in self.skipped],
            "errors": [e.to_dict() for e in self.errors],
            "unused_suppressions": list(self.unused_suppressions),
            "uncompared": list(self.uncompared),
            "runtimes": [cell.to_dict() for cell in self.runtime_matrix],
            "summary": {
                **counts,
                "suppressed": len(self.findings) - sum(counts.values()),
                "problems": {
                    **self.problem_counts(),
                    "suppressed": len(self.problems) - len(self.active_problems),
                },
            },
            "fail_on": self.fail_on,
            "exit_code": self.exit_code(),
        }


def merge_reports(reports: Iterable[Report], fail_on: str = "error") -> Report:
    parts: Sequence[Report] = list(reports)
    return Report(
        subjects=tuple(s for r in parts for s in r.subjects),
        findings=tuple(f for r in parts for f in r.findings),
        comparisons=tuple(c for r in parts for c in r.comparisons),
        skipped=tuple(s for r in parts for s in r.skipped),
        errors=tuple(e for r in parts for e in r.errors),
        unused_suppressions=tuple(u for r in parts for u in r.unused_suppressions),
        fail_on=fail_on,
        rules=tuple({d.slug: d for r in parts for d in r.rules}.values()),
        uncompared=tuple(s for r in parts for s in r.uncompared),
        require_comparisons=any(r.require_comparisons for r in parts),
        runtime_runs=tuple(run for r in parts for run in r.runtime_runs),
        **({"root": parts[0].root, "cwd": parts[0].cwd} if parts else {}),
    )


def input_problem(subject: str, error: Exception) -> InputProblem:
    from exportcheck.errors import ExportcheckError

    if isinstance(error, ExportcheckError):
        return InputProblem(subject, error.message, error.exit_code, type(error).__name__)
    return InputProblem(
        subject, f"{type(error).__name__}: {error}", EXIT_INPUT, type(error).__name__
    )
