"""Plain-text report for terminals and logs: one block per problem, in the style of ruff or mypy.

Each problem reads `path:line: error: CODE rule [module] what happens`, then one evidence line
and a `fix:` line, wrapped to the width the caller gives (the terminal's). Info problems and
the full list of evidence and comparisons show with `verbose`. The last lines give the verdict
and an `exportcheck explain CODE` hint for each code shown.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

from exportcheck.reporters.escaping import printable
from exportcheck.results.catalogue import UNEXPLAINED_FIX
from exportcheck.results.comparison import Comparison, relative_text
from exportcheck.results.findings import Finding, Severity
from exportcheck.results.problems import CONSEQUENCE_STAGE, Problem, shown_path
from exportcheck.results.report import Report, fail_threshold
from exportcheck.results.runtimes import matrix_rows, refusals

DEFAULT_WIDTH = 100
INDENT = "    "

_TARGET = re.compile(r"^(?P<file>.+\.py):[A-Za-z_][\w.]*$")
_MODULE_TARGET = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_][\w.]*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "cf.", "vs.", "approx.", "incl.", "resp.")
"""Words ending in a full stop that end no sentence: a fix line is never cut after one."""


def doc_section(doc: str, title: str) -> str:
    """One section of a rule's docstring as a single paragraph."""
    lines = doc.splitlines()
    try:
        start = lines.index(title) + 1
    except ValueError:
        return ""
    body: list[str] = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        body.append(line.strip())
    return " ".join(" ".join(body).split())


def fix_hint(report: Report, rule: str, explained: bool = True) -> str:
    """The first sentence of a rule's "How to fix"; for a problem no finding explains, of its
    "If nothing explains it" where it has one (its "How to fix" names a cause there is not)."""
    descriptor = report.rule(rule)
    if descriptor is None:
        return ""
    unexplained = "" if explained else doc_section(descriptor.doc, UNEXPLAINED_FIX)
    return first_sentence(unexplained or doc_section(descriptor.doc, "How to fix"))


def found_fix(problem: Problem) -> str:
    """A fix line that names what a measurement found (a localization), where it has one."""
    detail = problem.cause.detail
    return str(detail["fix"]) if detail and detail.get("fix") else ""


def problem_fix(problem: Problem, report: Report) -> str:
    """The fix line of a problem: what a measurement found, else its rule's."""
    return found_fix(problem) or fix_hint(report, problem.rule, problem.explained)


def first_sentence(text: str) -> str:
    """The text up to the first full stop, question or exclamation mark that ends a sentence:
    one followed by a space and a capital, a code span or a parenthesis, and not the end of an
    abbreviation (`e.g.` before a code span)."""
    for end in _SENTENCE_END.finditer(text):
        before = text[: end.start()]
        last_word = before.rsplit(None, 1)[-1].lower() if before.strip() else ""
        if not last_word.endswith(ABBREVIATIONS):
            return before
    return text


def subject_file(subject: str) -> str | None:
    """The file a subject names: the `.py` of a `file.py:build` target, none for a
    `package.module:build` target, else the subject (an artifact)."""
    match = _TARGET.match(subject)
    if match:
        return match["file"]
    return None if _MODULE_TARGET.match(subject) else subject


def problem_place(problem: Problem, root: str | None, cwd: str | None = None) -> str:
    """`path:line` of the responsible code, else the subject's file."""
    path, line = problem.source
    if path:
        shown = shown_path(path, root, cwd)
        return f"{shown}:{line}" if line else shown
    path = subject_file(problem.subject)
    return problem.subject if path is None else shown_path(path, root, cwd)


def evidence_summary(problem: Problem) -> str:
    """One line: how many artifacts and runtimes, the worst differences, the other rules."""
    parts = []
    artifacts = len(problem.artifacts)
    if artifacts:
        parts.append(f"{artifacts} artifact{'s' if artifacts != 1 else ''}")
    runtimes = len(problem.runtimes)
    if runtimes:
        parts.append(f"{runtimes} runtime{'s' if runtimes != 1 else ''}")
    worst, repeat = problem.worst_text("compare"), problem.worst_text("repeat")
    numbers = []
    if worst is not None:
        numbers.append(f"outputs differ by up to {worst}")
    if repeat is not None:
        numbers.append(f"two runs by up to {repeat}")
    text = ", ".join(parts + numbers)
    others = [
        rule for rule in dict.fromkeys(f.rule for f in problem.evidence) if rule != problem.rule
    ]
    if others:
        text += ("; " if text else "") + "also " + ", ".join(others)
    if not problem.explained:
        text = "no finding explains it" + ("; " + text if text else "")
    return text or "found once"


def _wrap(text: str, width: int | None, first: str = "", rest: str = INDENT) -> list[str]:
    """The text wrapped to `width`; one line when `width` is None or 0 (no terminal: a line
    cut in two breaks grep and CI problem matchers)."""
    if not width:
        return [(first + text).rstrip()]
    return textwrap.wrap(
        text,
        width=max(width, 40),
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _headline(problem: Problem, report: Report) -> str:
    module = f" [{problem.module}]" if problem.module else ""
    return (
        f"{problem_place(problem, report.root, report.cwd)}: {problem.severity.label}: {problem.code} "
        f"{problem.rule}{module} {problem.cause.message}"
    )


def _finding_line(finding: Finding) -> str:
    if finding.stage == CONSEQUENCE_STAGE:  # its message starts with the runner it ran on
        return f"- {finding.code} {finding.rule}: {finding.message}"
    where = finding.location.artifact or finding.location.runtime or "model"
    return f"- {finding.code} {finding.rule} ({where}): {finding.message}"


def comparison_line(comparison: Comparison) -> str:
    m, t = comparison.metrics, comparison.tolerance
    verdict = "ok" if comparison.passed else "FAIL"
    batch = f"@batch{comparison.batch_size}" if comparison.batch_size is not None else ""
    shown = "-" if m.max_abs is None else relative_text(m.max_abs, m.magnitude or 0.0)
    detail = f"max abs {shown}, {m.mismatched}/{m.total} mismatched"
    if not m.shape_ok:
        detail += f", shape {m.shape} expected {m.expected_shape}"
    if m.nonfinite > m.expected_nonfinite:
        detail += f", {m.nonfinite} NaN/Inf"
    return (
        f"- {verdict} {comparison.artifact_format} on {comparison.runtime_label} "
        f"{comparison.output}{batch}: {detail} (rtol={t.rtol:g} atol={t.atol:g})"
    )


def _problem_block(problem: Problem, report: Report, width: int | None, verbose: bool) -> list[str]:
    if problem.suppressed is not None:
        text = f"{_headline(problem, report)} (suppressed: {problem.suppressed.reason})"
        return _wrap(printable(text), width)
    lines = _wrap(printable(_headline(problem, report)), width)
    lines += _wrap(printable(evidence_summary(problem)), width, INDENT + "evidence: ", INDENT)
    fix = problem_fix(problem, report)
    if fix:
        lines += _wrap(printable(fix), width, INDENT + "fix: ", INDENT)
    if verbose:
        for finding in problem.evidence:
            lines += _wrap(printable(_finding_line(finding)), width, INDENT, INDENT + "  ")
        for comparison in problem.comparisons:
            lines += _wrap(printable(comparison_line(comparison)), width, INDENT, INDENT + "  ")
    return lines


def _shown(report: Report, verbose: bool) -> tuple[list[Problem], list[Problem]]:
    threshold = fail_threshold(report.fail_on)
    show_info = verbose or (threshold is not None and threshold <= Severity.INFO)
    shown = [p for p in report.problems if show_info or p.severity > Severity.INFO]
    hidden = [p for p in report.problems if not (show_info or p.severity > Severity.INFO)]
    return shown, hidden


def _subjects(report: Report) -> list[str]:
    seen = dict.fromkeys(report.subjects)
    for item in (*report.problems, *report.errors):
        seen.setdefault(item.subject, None)
    return list(seen)


def _verdict(report: Report, hidden: list[Problem], codes: Iterable[str]) -> list[str]:
    failed = report.failed_subjects()
    subjects = _subjects(report)
    counts = report.problem_counts()
    word = "failed" if report.exit_code() else "passed"
    parts = [f"{counts['error']} error(s)", f"{counts['warning']} warning(s)"]
    suppressed = len(report.problems) - len(report.active_problems)
    if suppressed:
        parts.append(f"{suppressed} suppressed")
    if hidden:
        rules = ", ".join(dict.fromkeys(p.rule for p in hidden))
        parts.append(f"{len(hidden)} info hidden ({rules}; verbose shows them)")
    summary = f"{word}: {len(failed)} of {len(subjects)} subject(s) failed; " + ", ".join(parts)
    if report.comparisons:
        bad = sum(1 for c in report.comparisons if not c.passed)
        summary += f"; {bad} of {len(report.comparisons)} comparison(s) failed"
    if report.errors:
        summary += f"; {len(report.errors)} input error(s)"
    summary += f" (fail on: {report.fail_on})"
    hints = [f"exportcheck explain {code}" for code in dict.fromkeys(codes)]
    return [summary] + (["see: " + ", ".join(hints)] if hints else [])


def render_text(report: Report, *, width: int | None = DEFAULT_WIDTH, verbose: bool = False) -> str:
    """The report, each line wrapped to `width`; none wrapped when `width` is None or 0."""
    shown, hidden = _shown(report, verbose)
    lines: list[str] = []
    failed = set(report.failed_subjects())
    for subject in _subjects(report):
        errors = [e for e in report.errors if e.subject == subject]
        problems = [p for p in shown if p.subject == subject]
        status = "input error" if errors else "failed" if subject in failed else "ok"
        lines += _wrap(printable(f"{subject}: {status}"), width)
        for error in errors:
            lines += _wrap(printable(f"error: {error.message}"), width, INDENT, INDENT * 2)
        for problem in problems:
            lines += _problem_block(problem, report, width, verbose)
        matrix = runtime_matrix_lines(report, subject, width)
        lines += matrix
        if problems or errors or matrix:
            lines.append("")
    if verbose and report.comparisons:
        lines += _comparison_lines(report, width)
    lines += _notes(report, width)
    codes = [p.code for p in shown]
    for line in _verdict(report, hidden, codes):
        lines += _wrap(printable(line), width)
    return "\n".join(lines) + "\n"


def runtime_matrix_lines(report: Report, subject: str, width: int | None) -> list[str]:
    """The subject's artifacts x runtimes: one line when every run matches, else a table of
    verdicts and each distinct refusal in the runtime's own words."""
    cells = [c for c in report.runtime_matrix if c.run.subject == subject]
    if not cells:
        return []
    runtimes, rows = matrix_rows(cells)
    if all(c.verdict in ("matches", "skipped") for c in cells):
        ran = sum(1 for c in cells if c.verdict == "matches")
        text = f"runtimes: all {ran} configuration(s) match on {', '.join(runtimes)}"
        return _wrap(printable(text), width, INDENT)
    first = max(len("runtimes"), *(len(r.artifact_format) for r in rows))
    widths = [max(len(name), *(len(r.verdicts.get(name, "-")) for r in rows)) for name in runtimes]

    def line(head: str, values: list[str]) -> str:
        cells_text = "  ".join(v.ljust(w) for v, w in zip(values, widths))
        return printable(f"{INDENT}{head.ljust(first)}  {cells_text}".rstrip())

    lines = [line("runtimes", list(runtimes))]
    lines += [line(r.artifact_format, [r.verdicts.get(n, "-") for n in runtimes]) for r in rows]
    for runtime, reason, formats in refusals(cells):
        text = f"{runtime} ({', '.join(formats)}): {reason}"
        lines += _wrap(printable(text), width, INDENT, INDENT + "  ")
    return lines


def _comparison_lines(report: Report, width: int | None) -> list[str]:
    lines = ["comparisons:"]
    for comparison in report.comparisons:
        text = f"{comparison.subject}: {comparison_line(comparison)[2:]}"
        lines += _wrap(printable(text), width, "  ", INDENT)
    return [*lines, ""]


def _notes(report: Report, width: int | None) -> list[str]:
    """Skipped steps and suppressions that matched nothing."""
    lines: list[str] = []
    for skip in report.skipped:
        where = f" [{skip.artifact}]" if skip.artifact else ""
        text = f"skipped: {skip.subject}: {skip.step}{where}: {skip.reason}"
        lines += _wrap(printable(text), width)
    for entry in report.unused_suppressions:
        text = f"warning: suppression #{entry.get('entry')} for {entry.get('rule')} matched nothing"
        lines += _wrap(printable(text), width)
    if report.skipped or report.unused_suppressions:
        lines.append("")
    return lines
