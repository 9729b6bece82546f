"""Markdown summary for a CI job summary or a pull-request comment: verdict, findings, failures."""

from __future__ import annotations

import re
from collections.abc import Sequence

from exportcheck.errors import EXIT_FINDINGS, EXIT_OK
from exportcheck.results.comparison import Comparison
from exportcheck.results.findings import Finding
from exportcheck.results.report import Report

MAX_ROWS = 50

_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _line(value: object) -> str:
    """One line of text: control characters and runs of whitespace become single spaces."""
    return " ".join(_CONTROL.sub(" ", str(value)).split())


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


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _verdict(report: Report) -> str:
    code = report.exit_code()
    word = "Passed" if code == EXIT_OK else "Failed" if code == EXIT_FINDINGS else "Error"
    counts = report.counts()
    suppressed = len(report.findings) - len(report.active_findings)
    parts = [
        f"{len(report.subjects)} subject(s)",
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        + (f", {suppressed} suppressed" if suppressed else ""),
    ]
    if report.comparisons:
        failed = sum(1 for c in report.comparisons if not c.passed)
        parts.append(f"{len(report.comparisons)} comparison(s), {failed} failed")
    if report.skipped:
        parts.append(f"{len(report.skipped)} step(s) skipped")
    if report.errors:
        parts.append(f"{len(report.errors)} input error(s)")
    return f"**{word}**: " + "; ".join(parts) + f" (fail on: {report.fail_on})"


def _finding_row(finding: Finding) -> list[str]:
    severity = finding.severity.label
    message = _text(finding.message)
    if finding.suppressed is not None:
        severity += " (suppressed)"
        message += " _(suppressed: " + _text(finding.suppressed.reason) + ")_"
    return [
        severity,
        f"{_code(finding.rule)} {_text(finding.code)}",
        _code(finding.subject),
        _code(finding.location.module),
        message,
    ]


def _findings(report: Report) -> list[str]:
    ordered = sorted(report.findings, key=lambda f: (f.suppressed is not None, -int(f.severity)))
    lines = ["", "### Findings", ""]
    lines += _table(
        ["Severity", "Rule", "Subject", "Module", "Message"],
        [_finding_row(f) for f in ordered[:MAX_ROWS]],
    )
    return lines + _more(len(ordered))


def _mismatched(c: Comparison) -> str:
    m = c.metrics
    cell = f"{m.mismatched}/{m.total}"
    if not m.shape_ok:
        cell += f"; shape {m.shape}, expected {m.expected_shape}"
    if m.nonfinite > m.expected_nonfinite:
        cell += f"; {m.nonfinite} NaN/Inf, expected {m.expected_nonfinite}"
    return _text(cell)


def _comparison_row(c: Comparison) -> list[str]:
    return [
        _code(c.subject),
        _text(c.artifact_label),
        _text(c.runtime_label),
        _code(c.output),
        _number(c.metrics.max_abs),
        _number(c.metrics.max_rel),
        _mismatched(c),
        f"rtol={c.tolerance.rtol:g} atol={c.tolerance.atol:g}",
    ]


def _comparisons(report: Report) -> list[str]:
    failed = [c for c in report.comparisons if not c.passed]
    passed = len(report.comparisons) - len(failed)
    lines = ["", "### Comparisons", ""]
    if failed:
        lines += _table(
            [
                "Subject",
                "Artifact",
                "Runtime",
                "Output",
                "Max abs",
                "Max rel",
                "Mismatched",
                "Tolerance",
            ],
            [_comparison_row(c) for c in failed[:MAX_ROWS]],
        )
        lines += _more(len(failed))
        lines.append("")
    lines.append(f"{passed} of {len(report.comparisons)} comparison(s) passed.")
    return lines


def _bullets(title: str, items: Sequence[str]) -> list[str]:
    if not items:
        return []
    lines = ["", f"### {title}", ""]
    lines += [f"- {item}" for item in items[:MAX_ROWS]]
    return lines + _more(len(items))


def render_markdown(report: Report) -> str:
    lines = ["## exportcheck", "", _verdict(report)]
    if report.findings:
        lines += _findings(report)
    if report.comparisons:
        lines += _comparisons(report)
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
