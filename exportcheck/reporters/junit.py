"""JUnit XML report for CI test dashboards: one test suite per subject, one test case per check.

How a Report maps onto test cases (classname is always the subject):

- a finding at or above the report's ``fail_on`` threshold: a failing case named
  ``"<rule> <module or node>"`` whose ``<failure>`` has the rule slug as ``type``, the finding's
  message as ``message``, and code, severity and location in its body;
- a suppressed finding: a skipped case, ``<skipped message="suppressed: <reason>">``;
- an active finding below the threshold: a passing case that carries the finding in
  ``<system-out>``. It did not fail the build, yet stays visible; reporting it as skipped would
  claim that a check did not run;
- a comparison: a case named ``"<artifact> <runtime> <output>"``, failing with the metrics and the
  tolerance in its message when the comparison did not pass, unless the numeric finding that
  judges that artifact (output-mismatch, runtime-nondeterminism, nonfinite-output) is suppressed
  (then skipped, with the reason) or below ``fail_on`` (then passing, metrics in the output);
- a step that did not run (``report.skipped``): a skipped case named ``"skipped <step>"``;
- an input error: a case named ``"input"`` with an ``<error>``;
- a subject with no findings, comparisons or input errors: one passing case ``"exportcheck"``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from exportcheck.results.comparison import Comparison
from exportcheck.results.findings import Finding
from exportcheck.results.report import Report

# XML 1.0 forbids most control characters even as character references; ElementTree would
# write them anyway and produce a file no parser accepts.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def _subjects(report: Report) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(report.subjects)
    for item in (*report.findings, *report.comparisons, *report.skipped, *report.errors):
        seen.setdefault(item.subject, None)
    return list(seen)


def _finding_name(finding: Finding) -> str:
    loc = finding.location
    where = loc.module or loc.node or loc.scope or loc.op_type
    return f"{finding.rule} {where}" if where else finding.rule


def _finding_body(finding: Finding) -> str:
    loc = finding.location
    lines = [
        finding.message,
        "",
        f"rule: {finding.rule}",
        f"code: {finding.code}",
        f"severity: {finding.severity.label}",
        f"subject: {finding.subject}",
    ]
    for key, value in (
        ("artifact", loc.artifact),
        ("scope", loc.scope),
        ("node", loc.node),
        ("op_type", loc.op_type),
        ("module", loc.module),
    ):
        if value:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _comparison_summary(comparison: Comparison) -> str:
    m, t = comparison.metrics, comparison.tolerance
    parts = [
        f"max_abs={_number(m.max_abs)}",
        f"max_rel={_number(m.max_rel)}",
        f"mismatched={m.mismatched}/{m.total}",
        f"rtol={t.rtol:g}",
        f"atol={t.atol:g}",
    ]
    if not m.shape_ok:
        parts.append(f"shape={m.shape} expected {m.expected_shape}")
    if m.nonfinite > m.expected_nonfinite:
        parts.append(f"nonfinite={m.nonfinite} expected {m.expected_nonfinite}")
    return " ".join(parts)


def _comparison_body(comparison: Comparison) -> str:
    lines = [
        f"artifact: {comparison.artifact or comparison.artifact_label}",
        f"format: {comparison.artifact_format}",
        f"runtime: {comparison.runtime_label}",
        f"output: {comparison.output}",
        f"reference: {comparison.reference}",
        f"tolerance source: {comparison.tolerance.source}",
        _comparison_summary(comparison),
    ]
    return "\n".join(lines) + "\n"


class _Suite:
    """Collects one subject's test cases and keeps the counts JUnit wants on the suite."""

    def __init__(self, subject: str) -> None:
        self.element = ET.Element("testsuite", name=_clean(subject))
        self.subject = subject
        self.tests = self.failures = self.errors = self.skipped = 0

    def case(self, name: str) -> ET.Element:
        self.tests += 1
        return ET.SubElement(
            self.element, "testcase", classname=_clean(self.subject), name=_clean(name)
        )

    def fail(self, name: str, kind: str, message: str, body: str) -> None:
        self.failures += 1
        failure = ET.SubElement(
            self.case(name), "failure", type=_clean(kind), message=_clean(message)
        )
        failure.text = _clean(body)

    def error(self, name: str, kind: str, message: str) -> None:
        self.errors += 1
        error = ET.SubElement(self.case(name), "error", type=_clean(kind), message=_clean(message))
        error.text = _clean(message)

    def skip(self, name: str, message: str) -> None:
        self.skipped += 1
        ET.SubElement(self.case(name), "skipped", message=_clean(message))

    def passed(self, name: str, output: str | None = None) -> None:
        case = self.case(name)
        if output:
            ET.SubElement(case, "system-out").text = _clean(output)

    def finish(self) -> ET.Element:
        for key in ("tests", "failures", "errors", "skipped"):
            self.element.set(key, str(getattr(self, key)))
        return self.element


def _add_findings(suite: _Suite, findings: Iterable[Finding], failing: set[Finding]) -> None:
    for finding in findings:
        name = _finding_name(finding)
        if finding.suppressed is not None:
            suite.skip(name, f"suppressed: {finding.suppressed.reason}")
        elif finding in failing:
            suite.fail(name, finding.rule, finding.message, _finding_body(finding))
        else:
            suite.passed(name, _finding_body(finding))


def _verdicts(findings: Iterable[Finding], failing: set[Finding]) -> dict[str | None, Finding]:
    """Per artifact, the numeric finding that judges its failed comparisons: a failing one
    first, else a suppressed one."""
    verdicts: dict[str | None, Finding] = {}
    for finding in findings:
        if finding.stage != "compare":
            continue
        current = verdicts.get(finding.location.artifact)
        if current is None or (finding in failing and current not in failing):
            verdicts[finding.location.artifact] = finding
    return verdicts


def _add_comparisons(
    suite: _Suite,
    comparisons: Iterable[Comparison],
    verdicts: dict[str | None, Finding],
    failing: set[Finding],
) -> None:
    for comparison in comparisons:
        name = f"{comparison.artifact_label} {comparison.runtime_label} {comparison.output}"
        verdict = verdicts.get(comparison.artifact)
        if comparison.passed:
            suite.passed(name, _comparison_body(comparison))
        elif verdict is not None and verdict.suppressed is not None and verdict not in failing:
            suite.skip(name, f"suppressed: {verdict.suppressed.reason}")
        elif verdict is not None and verdict not in failing:
            suite.passed(name, _comparison_body(comparison))
        else:
            suite.fail(
                name,
                "output-mismatch",
                f"{comparison.output} differs from {comparison.reference}: "
                + _comparison_summary(comparison),
                _comparison_body(comparison),
            )


def render_junit(report: Report) -> str:
    failing = set(report.failing_findings())
    root = ET.Element("testsuites", name=_clean(report.tool))
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for subject in _subjects(report):
        suite = _Suite(subject)
        findings = [f for f in report.findings if f.subject == subject]
        comparisons = [c for c in report.comparisons if c.subject == subject]
        errors = [e for e in report.errors if e.subject == subject]
        for problem in errors:
            suite.error("input", problem.error, problem.message)
        _add_findings(suite, findings, failing)
        _add_comparisons(suite, comparisons, _verdicts(findings, failing), failing)
        for skip in (s for s in report.skipped if s.subject == subject):
            where = f" {skip.artifact}" if skip.artifact else ""
            device = f" on {skip.device}" if skip.device else ""
            suite.skip(f"skipped {skip.step}{where}{device}", skip.reason)
        if not (findings or comparisons or errors):
            suite.passed("exportcheck")
        root.append(suite.finish())
        for key in totals:
            totals[key] += getattr(suite, key)
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
