"""JUnit XML report for CI test dashboards: one test suite per subject, one test case per problem.

How a Report maps onto test cases (classname is always the subject), valid against the Jenkins
xunit schema (no counts on ``testsuites`` beyond tests, failures and errors):

- a problem at or above the report's ``fail_on`` threshold: a failing case named
  ``"<code> <rule> [<module>]"`` whose ``<failure>`` has the rule slug as ``type``, the cause's
  message as ``message``, and the location, the evidence and the failing comparisons in its body;
- a suppressed problem: a skipped case, ``<skipped message="suppressed: <reason>">``;
- an active warning below the threshold: a passing case that carries the problem in
  ``<system-out>``. It did not fail the build, yet stays visible;
- an input error: a case named ``"input"`` with an ``<error>``;
- a subject with no failing problem and no input error: one passing case ``"eval-mode export"``,
  its info notes and comparison count in ``<system-out>``.

Names are unique within a suite (a repeated name gets `` #2``). Steps that did not run are
listed in the suite's ``<system-out>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from exportcheck.reporters.escaping import printable
from exportcheck.reporters.text import comparison_line, evidence_summary, problem_place
from exportcheck.results.findings import Severity
from exportcheck.results.problems import Problem
from exportcheck.results.report import Report

CLEAN_CASE = "eval-mode export"


def _subjects(report: Report) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(report.subjects)
    for item in (*report.problems, *report.comparisons, *report.skipped, *report.errors):
        seen.setdefault(item.subject, None)
    return list(seen)


def problem_name(problem: Problem) -> str:
    module = f" [{problem.module}]" if problem.module else ""
    return f"{problem.code} {problem.rule}{module}"


def _lines(lines: Iterable[str]) -> str:
    """Element text: each line escaped on its own, so a newline inside a name cannot start a
    line of its own."""
    return "".join(printable(line) + "\n" for line in lines)


def _problem_body(problem: Problem, report: Report) -> str:
    lines = [
        f"{problem_place(problem, report.root, report.cwd)}: {problem.cause.message}",
        f"evidence: {evidence_summary(problem)}",
        "",
    ]
    lines += [f"- {f.code} {f.rule}: {f.message}" for f in problem.evidence]
    lines += [comparison_line(c) for c in problem.comparisons]
    return _lines(lines)


class _Suite:
    """Collects one subject's test cases and keeps the counts JUnit wants on the suite.
    Attributes are escaped here; element text (`body`, `output`) comes escaped by `_lines`."""

    def __init__(self, subject: str) -> None:
        self.element = ET.Element("testsuite", name=printable(subject))
        self.subject = subject
        self.names: dict[str, int] = {}
        self.tests = self.failures = self.errors = self.skipped = 0

    def case(self, name: str) -> ET.Element:
        self.tests += 1
        seen = self.names.get(name, 0) + 1
        self.names[name] = seen
        unique = name if seen == 1 else f"{name} #{seen}"
        return ET.SubElement(
            self.element, "testcase", classname=printable(self.subject), name=printable(unique)
        )

    def fail(self, name: str, kind: str, message: str, body: str) -> None:
        self.failures += 1
        failure = ET.SubElement(
            self.case(name), "failure", type=printable(kind), message=printable(message)
        )
        failure.text = body

    def error(self, name: str, kind: str, message: str) -> None:
        self.errors += 1
        error = ET.SubElement(
            self.case(name), "error", type=printable(kind), message=printable(message)
        )
        error.text = printable(message)

    def skip(self, name: str, message: str) -> None:
        self.skipped += 1
        ET.SubElement(self.case(name), "skipped", message=printable(message))

    def passed(self, name: str, output: str | None = None) -> None:
        case = self.case(name)
        if output:
            ET.SubElement(case, "system-out").text = output

    def finish(self, output: str | None) -> ET.Element:
        for key in ("tests", "failures", "errors", "skipped"):
            self.element.set(key, str(getattr(self, key)))
        if output:
            ET.SubElement(self.element, "system-out").text = output
        return self.element


def _suite(report: Report, subject: str, failing: set[int]) -> _Suite:
    suite = _Suite(subject)
    problems = [(i, p) for i, p in enumerate(report.problems) if p.subject == subject]
    errors = [e for e in report.errors if e.subject == subject]
    for problem in errors:
        suite.error("input", problem.error, problem.message)
    notes = []
    for index, problem in problems:
        name = problem_name(problem)
        body = _problem_body(problem, report)
        if problem.suppressed is not None:
            suite.skip(name, f"suppressed: {problem.suppressed.reason}")
        elif index in failing:
            suite.fail(name, problem.rule, problem.cause.message, body)
        elif problem.severity > Severity.INFO:
            suite.passed(name, body)
        else:
            notes.append(f"{problem.severity.label}: {name}: {problem.cause.message}")
    if not errors and not any(i in failing for i, _ in problems):
        compared = [c for c in report.comparisons if c.subject == subject]
        if compared:
            passed = sum(1 for c in compared if c.passed)
            notes.append(f"{passed} of {len(compared)} comparison(s) passed")
        suite.passed(CLEAN_CASE, _lines(notes) if notes else None)
    return suite


def render_junit(report: Report, *, width: int | None = 100, verbose: bool = False) -> str:
    failing_problems = set(map(id, report.failing_problems()))
    failing = {i for i, p in enumerate(report.problems) if id(p) in failing_problems}
    root = ET.Element("testsuites", name=printable(report.tool))
    totals = dict.fromkeys(("tests", "failures", "errors"), 0)
    for subject in _subjects(report):
        suite = _suite(report, subject, failing)
        skipped = [
            f"skipped {s.step}{f' {s.artifact}' if s.artifact else ''}: {s.reason}"
            for s in report.skipped
            if s.subject == subject
        ]
        root.append(suite.finish(_lines(skipped) if skipped else None))
        for key in totals:
            totals[key] += getattr(suite, key)
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
