"""GitHub Actions annotations: one workflow command per problem, as ruff's `--output-format
github` writes them, so each problem shows on the pull request's diff at its line.

    ::error file=models/tagger.py,line=14,title=EC101 training-dropout::[head] Dropout ...

The problems are those a SARIF upload holds: at or above the report's fail-on threshold
(errors and warnings for `never`), every one with `verbose`; suppressed problems are left
out (the team accepted them, and an annotation cannot say so). Severity maps to `error`,
`warning` and `notice`. The file is the responsible source relative to the repository root,
else the file the subject names, at line 1; a problem with no file in the repository (a
`package.module:build` target) is annotated without one. No column: exportcheck knows none.

Input errors become `error` annotations and suppressions that matched nothing `warning`s.
Values are escaped as the runner reads them (actions/toolkit `command.ts`): in the message
`%`, CR and LF; in a property `:` and `,` as well. Names are made printable first, so a
newline inside a node name shows as `\\x0a` instead of breaking the message into lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from exportcheck.reporters.escaping import printable
from exportcheck.reporters.sarif import reported_problems
from exportcheck.reporters.text import evidence_summary, problem_fix, subject_file
from exportcheck.results.findings import Severity
from exportcheck.results.problems import OUTSIDE, Problem, library_relative, shown_path
from exportcheck.results.report import Report

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}

_MESSAGE_ESCAPES = (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"))
_PROPERTY_ESCAPES = (*_MESSAGE_ESCAPES, (":", "%3A"), (",", "%2C"))


def escape_message(text: str) -> str:
    for raw, escaped in _MESSAGE_ESCAPES:  # `%` first, so no escape is escaped again
        text = text.replace(raw, escaped)
    return text


def escape_property(text: str) -> str:
    for raw, escaped in _PROPERTY_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def workflow_command(command: str, lines: Sequence[str], **properties: str | int | None) -> str:
    """`::command key=value,...::message`: each line made printable (a newline inside a name
    stays in its line), then joined by an escaped newline."""
    shown = ",".join(
        f"{key}={escape_property(printable(value))}"
        for key, value in properties.items()
        if value is not None
    )
    message = "\n".join(printable(line) for line in lines)
    return f"::{command}{' ' + shown if shown else ''}::{escape_message(message)}"


def _place(problem: Problem, report: Report) -> tuple[str | None, int | None]:
    """The repository file and line an annotation goes on, if any."""
    source, line = problem.source
    candidates = [(source, line)] if source else []
    candidates.append((subject_file(problem.subject), 1))
    for path, at in candidates:
        if path is None or library_relative(path) is not None:
            continue
        shown = shown_path(path, report.root, report.cwd)
        if not shown.startswith(OUTSIDE + "/"):
            return shown, at or 1
    return None, None


def _annotation(problem: Problem, report: Report) -> str:
    module = f"[{problem.module}] " if problem.module else ""
    lines = [f"{module}{problem.cause.message}", f"evidence: {evidence_summary(problem)}"]
    fix = problem_fix(problem, report)
    if fix:
        lines.append(f"fix: {fix}")
    lines.append(f"subject: {problem.subject}")
    path, line = _place(problem, report)
    return workflow_command(
        COMMANDS[problem.severity],
        lines,
        file=path,
        line=line,
        title=f"{problem.code} {problem.rule}",
    )


def render_github(report: Report, *, width: int | None = 100, verbose: bool = False) -> str:
    lines = [
        _annotation(problem, report)
        for problem in reported_problems(report, verbose)
        if problem.suppressed is None
    ]
    lines += [
        workflow_command(
            "error", [f"{error.subject}: {error.message}"], title=f"exportcheck: {error.error}"
        )
        for error in report.errors
    ]
    lines += [
        workflow_command(
            "warning",
            [f"suppression #{entry.get('entry')} for {entry.get('rule')} matched nothing"],
            title="exportcheck: unused suppression",
        )
        for entry in report.unused_suppressions
    ]
    # Every reporter ends with a newline; a clean report is one notice, not an empty stdout.
    if not lines:
        lines.append(workflow_command("notice", [_verdict(report)], title="exportcheck"))
    return "\n".join(lines) + "\n"


def _verdict(report: Report) -> str:
    counts = report.problem_counts()
    word = "failed" if report.exit_code() else "passed"
    return (
        f"{word}: {len(report.subjects)} subject(s), {counts['error']} error(s), "
        f"{counts['warning']} warning(s) (fail on: {report.fail_on})"
    )
