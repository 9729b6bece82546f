"""Helpers for putting the eval-mode export check into a team's own test suite."""

from __future__ import annotations

from typing import Any

from exportcheck.results.report import Report


class ExportCheckFailed(AssertionError):
    """Raised by `assert_export_ok`; carries the report for closer inspection."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


def describe_failures(report: Report, fail_on: str | None = None) -> str:
    lines = []
    for problem in report.errors:
        lines.append(f"  input error: {problem.subject}: {problem.message}")
    for finding in report.failing_findings(fail_on):
        module = f" [{finding.location.module}]" if finding.location.module else ""
        lines.append(f"  {finding.severity.label} {finding.rule}{module}: {finding.message}")
    return "\n".join(lines)


def assert_export_ok(
    model: Any, example_inputs: Any, *, fail_on: str = "error", **options: Any
) -> Report:
    """Validates `model` like `exportcheck validate` and raises an AssertionError listing every
    finding at or above `fail_on`. Options are those of `exportcheck.validate` (formats, devices,
    rtol, atol, out_dir, allow_tf32, probes, subject). Returns the report when it passes."""
    from exportcheck.pipeline.extras import require_validate_extra

    require_validate_extra("assert_export_ok")
    from exportcheck.pipeline.validation import validate

    options.setdefault("devices", "cpu")
    report = validate(model, example_inputs, fail_on=fail_on, **options)
    if report.exit_code(fail_on) != 0:
        count = len(report.failing_findings(fail_on)) + len(report.errors)
        raise ExportCheckFailed(
            f"exportcheck found {count} problem(s) with {options.get('subject', 'the model')}:\n"
            + describe_failures(report, fail_on),
            report,
        )
    return report
