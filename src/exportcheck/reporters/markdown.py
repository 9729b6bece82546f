"""Markdown summary for a CI job summary or a pull-request comment: the verdict (how many
subjects failed), one row per problem with its location and evidence, and what did not run.

Rows are capped, so a zoo of models stays far below GitHub's 1 MiB job-summary limit; info
problems are counted, not listed, unless the report fails on them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from exportcheck.errors import EXIT_FINDINGS, EXIT_OK
from exportcheck.reporters.escaping import printable
from exportcheck.reporters.text import evidence_summary, problem_place
from exportcheck.results.findings import Severity
from exportcheck.results.problems import Problem
from exportcheck.results.report import Report, fail_threshold
from exportcheck.results.runtimes import matrix_rows, refusals

MAX_ROWS = 100

_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _line(value: object) -> str:
    """One line of text: control characters and runs of whitespace become single spaces."""
    return " ".join(printable(str(value).replace("\n", " ").replace("\t", " ")).split())


def _text(value: object) -> str:
    """Plain text for a table cell: Markdown punctuation and pipes escaped, one line."""
    text = _line(value)
    return _SPECIAL.sub(r"\\\1", text) if text else "-"


def _code(value: str | None) -> str:
    """An identifier as a code span; the delimiter outgrows any backtick run inside it."""
    text = _line(value or "")
    if not text:
        return "-"
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    # GFM splits table cells on pipes before it reads code spans, so escape them here too.
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _more(total: int) -> list[str]:
    return [f"_... and {total - MAX_ROWS} more_"] if total > MAX_ROWS else []


def _verdict(report: Report) -> str:
    code = report.exit_code()
    word = "Passed" if code == EXIT_OK else "Failed" if code == EXIT_FINDINGS else "Error"
    subjects = dict.fromkeys((*report.subjects, *(e.subject for e in report.errors)))
    counts = report.problem_counts()
    suppressed = len(report.problems) - len(report.active_problems)
    parts = [
        f"{len(report.failed_subjects())} of {len(subjects)} subject(s) failed",
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        + (f", {suppressed} suppressed" if suppressed else ""),
    ]
    if report.comparisons:
        failed = sum(1 for c in report.comparisons if not c.passed)
        parts.append(f"{failed} of {len(report.comparisons)} comparison(s) failed")
    if report.skipped:
        parts.append(f"{len(report.skipped)} step(s) skipped")
    if report.errors:
        parts.append(f"{len(report.errors)} input error(s)")
    return f"**{word}**: " + "; ".join(parts) + f" (fail on: {report.fail_on})"


def _problem_row(problem: Problem, report: Report) -> list[str]:
    severity = problem.severity.label
    cause = _text(problem.cause.message)
    if problem.suppressed is not None:
        severity += " (suppressed)"
        cause += " _(suppressed: " + _text(problem.suppressed.reason) + ")_"
    return [
        severity,
        f"{_text(problem.code)} {_code(problem.rule)}",
        _code(problem.subject),
        _code(problem_place(problem, report.root, report.cwd)),
        _code(problem.module),
        cause,
        _text(evidence_summary(problem)),
    ]


def _problems(report: Report) -> list[str]:
    threshold = fail_threshold(report.fail_on)
    listed = [
        p
        for p in report.problems
        if p.severity > Severity.INFO or (threshold is not None and threshold <= Severity.INFO)
    ]
    if not listed:
        return []
    ordered = sorted(listed, key=lambda p: (p.suppressed is not None, -int(p.severity)))
    lines = ["", "### Problems", ""]
    lines += _table(
        ["Severity", "Rule", "Subject", "Location", "Module", "Cause", "Evidence"],
        [_problem_row(p, report) for p in ordered[:MAX_ROWS]],
    )
    return lines + _more(len(ordered))


def _comparisons(report: Report) -> list[str]:
    passed = sum(1 for c in report.comparisons if c.passed)
    return ["", f"{passed} of {len(report.comparisons)} comparison(s) passed."]


def _runtimes(report: Report) -> list[str]:
    """Artifacts x runtimes, one row per subject and artifact, and each distinct refusal."""
    cells = report.runtime_matrix
    if not cells:
        return []
    runtimes, rows = matrix_rows(cells)
    lines = ["", "### Runtimes", ""]
    lines += _table(
        ["Subject", "Artifact", *(_code(r) for r in runtimes)],
        [
            [_code(r.subject), _code(r.artifact_format)]
            + [_text(r.verdicts.get(name, "-")) for name in runtimes]
            for r in rows[:MAX_ROWS]
        ],
    )
    lines += _more(len(rows))
    reasons = [
        f"{_code(runtime)} ({_text(', '.join(formats))}): {_text(reason)}"
        for runtime, reason, formats in refusals(cells)
    ]
    return lines + ([""] + [f"- {r}" for r in reasons[:MAX_ROWS]] if reasons else [])


def _bullets(title: str, items: Sequence[str]) -> list[str]:
    if not items:
        return []
    lines = ["", f"### {title}", ""]
    lines += [f"- {item}" for item in items[:MAX_ROWS]]
    return lines + _more(len(items))


def render_markdown(report: Report, *, width: int | None = 100, verbose: bool = False) -> str:
    lines = ["## exportcheck", "", _verdict(report)]
    lines += _problems(report)
    if report.comparisons:
        lines += _comparisons(report)
    lines += _runtimes(report)
    skipped = []
    for skip in report.skipped:
        where = f" ({_text(skip.artifact)})" if skip.artifact else ""
        device = f" on {_text(skip.device)}" if skip.device else ""
        skipped.append(
            f"{_code(skip.subject)}: {_text(skip.step)}{where}{device}: {_text(skip.reason)}"
        )
    lines += _bullets("Skipped", skipped)
    lines += _bullets(
        "Input errors",
        [f"{_code(e.subject)}: {_text(e.message)} ({_text(e.error)})" for e in report.errors],
    )
    lines += _bullets(
        "Unused suppressions",
        [
            f"entry #{_text(entry.get('entry'))} for {_code(str(entry.get('rule')))} matched nothing"
            for entry in report.unused_suppressions
        ],
    )
    return "\n".join(lines) + "\n"
