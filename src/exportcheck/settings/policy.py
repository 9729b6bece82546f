"""Applies a team's policy to a report: rule selection, severity overrides, reasoned suppressions.

Suppressions work on problems: an entry that matches a problem's cause accepts the whole
problem, so the evidence it explains (the same finding in other artifacts, the probes, the
mismatches it causes) is suppressed with the cause's reason.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from exportcheck.results.findings import Finding, Suppression
from exportcheck.results.problems import group_problems
from exportcheck.results.report import Report
from exportcheck.settings.config import IgnoreEntry, Settings

if TYPE_CHECKING:
    from exportcheck.results.comparison import Comparison


def _matches(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    return value is not None and fnmatch.fnmatchcase(value, pattern)


def entry_matches(entry: IgnoreEntry, finding: Finding) -> bool:
    return (
        entry.rule == finding.rule
        and _matches(entry.subject, finding.subject)
        and _matches(entry.module, finding.location.module)
        and _matches(entry.node, finding.location.node)
    )


def apply_policy(report: Report, settings: Settings) -> Report:
    """The report as the team's settings judge it; suppressed findings stay, marked."""
    if (
        settings.select is None
        and not settings.ignore_rules
        and not settings.severity
        and not settings.ignore
    ):
        return replace(report, unused_suppressions=(), fail_on=settings.fail_on)
    used: set[int] = set()
    findings: list[Finding] = []
    for finding in report.findings:
        if settings.select is not None and finding.rule not in settings.select:
            continue
        if finding.rule in settings.ignore_rules:
            continue
        if finding.rule in settings.severity:
            finding = replace(finding, severity=settings.severity[finding.rule])
        for entry in settings.ignore:
            if entry_matches(entry, finding):
                used.add(entry.index)
                finding = replace(finding, suppressed=Suppression(entry.reason, entry.index))
                break
        findings.append(finding)
    unused = tuple(entry.to_dict() for entry in settings.ignore if entry.index not in used)
    return replace(
        report,
        findings=_covered_by_causes(findings, report.comparisons),
        unused_suppressions=unused,
        fail_on=settings.fail_on,
    )


def _covered_by_causes(
    findings: Sequence[Finding], comparisons: Sequence[Comparison]
) -> tuple[Finding, ...]:
    """The findings with every problem's evidence suppressed where its cause is."""
    covered = list(findings)
    for problem in group_problems(findings, comparisons):
        if problem.suppressed is None:
            continue
        for index in problem.finding_indices:
            if covered[index].suppressed is None:
                covered[index] = replace(covered[index], suppressed=problem.suppressed)
    return tuple(covered)
