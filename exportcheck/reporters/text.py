"""Plain-text report for terminals and logs: a table of findings, comparisons, skips, errors."""

from __future__ import annotations

from collections.abc import Sequence

from exportcheck.results.report import Report


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    widths[-1] = 0

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return [line(headers), line(["-" * max(w, len(h)) for w, h in zip(widths, headers)])] + [
        line(row) for row in rows
    ]


def _where(finding) -> str:  # noqa: ANN001 - a Finding
    loc = finding.location
    parts = []
    if loc.artifact and loc.artifact != finding.subject:
        parts.append(loc.artifact)
    if loc.scope:
        parts.append(loc.scope)
    if loc.node:
        parts.append(f"{loc.node} ({loc.op_type})" if loc.op_type else loc.node)
    elif loc.op_type:
        parts.append(loc.op_type)
    return " :: ".join(parts)


def render_text(report: Report) -> str:
    lines: list[str] = []
    for problem in report.errors:
        lines.append(f"error: {problem.subject}: {problem.message}")
    if report.errors:
        lines.append("")
    if report.findings:
        rows = []
        for f in report.findings:
            severity = f.severity.label + (" (suppressed)" if f.suppressed else "")
            rows.append(
                [severity, f.rule, f.location.module or "-", f.subject, _where(f), f.message]
            )
        lines += _table(["severity", "rule", "module", "subject", "where", "message"], rows)
        for f in report.findings:
            if f.suppressed:
                lines.append(f"  suppressed {f.rule} at {f.subject}: {f.suppressed.reason}")
        lines.append("")
    failed = [c for c in report.comparisons if not c.passed]
    if failed:
        rows = []
        for c in failed:
            rows.append(
                [
                    c.subject,
                    c.artifact_label,
                    c.runtime_label,
                    c.output,
                    f"{c.metrics.max_abs:.3g}" if c.metrics.max_abs is not None else "shape",
                    f"{c.metrics.mismatched}/{c.metrics.total}",
                    f"rtol={c.tolerance.rtol:g} atol={c.tolerance.atol:g}",
                ]
            )
        lines.append("failed comparisons:")
        lines += _table(
            ["subject", "artifact", "runtime", "output", "max_abs", "mismatched", "tolerance"],
            rows,
        )
        lines.append("")
    for skip in report.skipped:
        where = f" [{skip.artifact}]" if skip.artifact else ""
        lines.append(f"skipped: {skip.subject}: {skip.step}{where}: {skip.reason}")
    if report.skipped:
        lines.append("")
    for entry in report.unused_suppressions:
        lines.append(
            f"warning: suppression #{entry.get('entry')} for {entry.get('rule')} matched nothing"
        )
    counts = report.counts()
    suppressed = len(report.findings) - len(report.active_findings)
    summary = (
        f"{len(report.subjects)} subject(s): {counts['error']} error(s), "
        f"{counts['warning']} warning(s), {counts['info']} info"
    )
    if suppressed:
        summary += f", {suppressed} suppressed"
    if report.comparisons:
        failed = sum(1 for c in report.comparisons if not c.passed)
        summary += f"; {len(report.comparisons)} comparison(s), {failed} failed"
    if report.errors:
        summary += f"; {len(report.errors)} input error(s)"
    lines.append(summary)
    return "\n".join(lines) + "\n"
