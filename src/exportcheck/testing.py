"""Helpers for putting the eval-mode export check into a team's own test suite."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from exportcheck.results.report import Report
from exportcheck.settings.config import DEFAULT_SOURCE, Settings

# The keyword arguments of `assert_export_ok` that are settings, and the `[tool.exportcheck]`
# keys they set: checked as the file's values are, and shown as coming from the call.
SETTING_KEYWORDS = {
    "fail_on": "fail-on",
    "formats": "formats",
    "rtol": "rtol",
    "atol": "atol",
    "allow_tf32": "allow-tf32",
    "runtimes": "runtimes",
    "select": "select",
    "ignore": "ignore-rules",
    "suppress": "ignore",
    "severity": "severity",
}


class ExportCheckFailed(AssertionError):
    """Raised by `assert_export_ok`; carries the report for closer inspection."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


def call_settings(settings: Settings | None, options: dict[str, Any]) -> Settings:
    """The project's settings (`[tool.exportcheck]` of the pyproject.toml found from the working
    directory, unless given) with the call's own; the call's setting keywords leave `options`."""
    from exportcheck.settings.config import load_settings, with_overrides

    table = {}
    for keyword, key in SETTING_KEYWORDS.items():
        value = options.pop(keyword, None)
        if value is not None:
            table[key] = list(value) if isinstance(value, (tuple, set, frozenset)) else value
    base = settings if settings is not None else load_settings()
    return with_overrides(base, table, "assert_export_ok") if table else base


def validate_options(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """`exportcheck.validate`'s arguments: the call's options over the settings'. The CPU
    unless a device is configured: a test suite's machine is not the deployment's."""
    from exportcheck.pipeline.validation import Tolerances

    device = settings.device if settings.source("device") != DEFAULT_SOURCE else "cpu"
    tolerances = Tolerances(settings.rtol, settings.atol, dict(settings.output_tolerances))
    return {
        "devices": device,
        "tolerances": tolerances,
        **options,
        "formats": settings.formats,
        "allow_tf32": settings.allow_tf32,
        "runtimes": settings.runtimes,
        "fail_on": settings.fail_on,
    }


def failure_message(report: Report) -> str:
    """The failing problems as the text report shows them (place, rule, evidence, fix), one
    line each, under a first line a test runner's one-line summary shows; the report's other
    parts (skipped steps, comparisons) stay on the exception's `report`."""
    from exportcheck.reporters.escaping import printable
    from exportcheck.reporters.text import evidence_summary, problem_fix, problem_place

    failing = report.failing_problems()
    subjects = ", ".join(report.failed_subjects())
    lines = [
        f"exportcheck: {len(failing) + len(report.errors)} problem(s) at or above "
        f"{report.fail_on} in {subjects}"
    ]
    lines += [f"{error.subject}: input error: {error.message}" for error in report.errors]
    for problem in failing:
        module = f" [{problem.module}]" if problem.module else ""
        lines.append(
            f"{problem_place(problem, report.root)}: {problem.severity.label}: {problem.code} "
            f"{problem.rule}{module} {problem.cause.message}"
        )
        lines.append(f"    evidence: {evidence_summary(problem)}")
        fix = problem_fix(problem, report)
        lines += [f"    fix: {fix}"] if fix else []
    codes = dict.fromkeys(p.code for p in failing)
    lines += [f"see: {', '.join(f'exportcheck explain {c}' for c in codes)}"] if codes else []
    return "\n".join(printable(line) for line in lines)


@contextlib.contextmanager
def torch_trace_kept_to_itself() -> Iterator[None]:
    """torch's structured trace log ('torch.__trace') records every export step at DEBUG for
    the TORCH_TRACE file; pytest attaches its log capture to every logger that does not
    propagate, this one included, so a failure would show dozens of empty DEBUG lines (and
    torch builds the payloads only because a handler is there). While exportcheck exports,
    the logger keeps only torch's own handlers."""
    logger = logging.getLogger("torch.__trace")
    borrowed = [h for h in logger.handlers if not type(h).__module__.startswith("torch.")]
    for handler in borrowed:
        logger.removeHandler(handler)
    try:
        yield
    finally:
        for handler in borrowed:
            logger.addHandler(handler)


def assert_export_ok(
    model: Any, example_inputs: Any, *, settings: Settings | None = None, **options: Any
) -> Report:
    """Validates `model` like `exportcheck validate`, judges the report by the project's
    `[tool.exportcheck]` settings as the command does, and raises an AssertionError with the
    failing problems (rule, place, evidence and fix) when any is at or above `fail_on`.

    Setting keywords override the project's: `fail_on`, `formats`, `rtol`, `atol`,
    `allow_tf32`, `select` (rules, replacing the configured selection), `ignore` (rules, added
    to `ignore-rules`), `suppress` (entries as in `[[tool.exportcheck.ignore]]`, each a dict
    with a rule and a reason, added to the configured ones) and `severity` (rule -> level).
    `settings` replaces the discovered project settings. Other options go to
    `exportcheck.validate` (devices, tolerances, out_dir, probes, subject). Returns the judged
    report when it passes."""
    __tracebackhide__ = True
    from exportcheck.pipeline.extras import require_validate_extra

    require_validate_extra("assert_export_ok")
    from exportcheck.pipeline.validation import validate
    from exportcheck.settings.policy import apply_policy

    judged_by = call_settings(settings, options)
    with torch_trace_kept_to_itself():
        found = validate(model, example_inputs, **validate_options(judged_by, options))
    report = apply_policy(found, judged_by)
    if report.exit_code() != 0:
        raise ExportCheckFailed(failure_message(report), report)
    return report
