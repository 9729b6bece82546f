"""SARIF 2.1.0 report for code scanning: the rule catalogue and one result per problem.

One run. ``tool.driver.rules`` lists every rule in the catalogue, so a viewer can show each
rule's documentation. ``results`` holds one result per problem (a root cause with the evidence
it explains): its physical location is the responsible source file, relative to the project
root, with ``region.startLine``; where no project source is known, the subject's file (a
``file.py:build`` target or an inspected artifact). Artifacts, runtimes, modules and nodes are
never file URIs: the module is a logical location, and artifacts, runtimes, the worst
differences and every evidence finding go into the result's properties.
``partialFingerprints`` hold a hash of rule, subject, module and source file that stays the
same across runs, machines and temporary folders.

A suppressed problem keeps its result with an external suppression and the team's reason.
Input errors become error notifications of the invocation, which is then not successful;
skipped steps become notes and suppressions that matched nothing become configuration
warnings.

Message texts are shown to people (a code-scanning alert, a log viewer), so the names in them
are escaped (`printable`); locations and properties keep the exact strings, for tools.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from exportcheck import __version__
from exportcheck.reporters.escaping import dumps_valid, printable
from exportcheck.results.catalogue import DOC_SECTIONS, RuleDescriptor
from exportcheck.results.findings import Location, Severity
from exportcheck.results.problems import Problem, shown_path
from exportcheck.results.report import InputProblem, Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}

_FILE_TARGET = re.compile(r"^(?P<file>.+\.py):(?P<attr>[A-Za-z_][\w.]*)$")
_MODULE_TARGET = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_][\w.]*)$"
)
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def artifact_uri(path: str) -> str:
    """A URI for a file path: relative stays relative (forward slashes), absolute is file://."""
    if _DRIVE.match(path) or path.startswith("\\\\"):
        return PureWindowsPath(path).as_uri()
    posix = path.replace("\\", "/")
    if posix.startswith("/"):
        return PurePosixPath(posix).as_uri()
    # Percent-encodes a colon too, which would otherwise read as a URI scheme; a name's
    # undecodable bytes (surrogate-escaped) are encoded as the bytes they stand for.
    return quote(posix.encode("utf-8", "surrogateescape"), safe="/")


def _subject_location(subject: str) -> tuple[str | None, dict[str, Any] | None]:
    """The file a subject names, if any, and the callable of a `file.py:build` or
    `package.module:build` target as a logical location."""
    file_target = _FILE_TARGET.match(subject)
    if file_target is not None:
        path, attr = file_target["file"], file_target["attr"]
    else:
        module_target = _MODULE_TARGET.match(subject)
        if module_target is None:
            return subject, None
        path, attr = None, module_target["attr"]
    return path, {
        "name": attr.rsplit(".", 1)[-1],
        "fullyQualifiedName": subject,
        "kind": "function",
    }


def _markdown(doc: str) -> str:
    """A rule docstring as Markdown: section titles in bold, their indented bodies dedented."""
    lines = []
    for line in doc.splitlines():
        if line.strip() in DOC_SECTIONS and not line.startswith(" "):
            lines += [f"**{line.strip()}**", ""]
        else:
            lines.append(line[4:] if line.startswith("    ") else line)
    return "\n".join(lines)


def _descriptor(rule: RuleDescriptor) -> dict[str, Any]:
    doc = rule.doc
    return {
        "id": rule.slug,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": doc},
        "help": {"text": doc, "markdown": _markdown(doc)},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"code": rule.code, "stage": rule.stage},
    }


def _logical_locations(location: Location) -> list[dict[str, Any]]:
    logical: list[dict[str, Any]] = []
    if location.module:
        logical.append(
            {
                "name": location.module.rsplit(".", 1)[-1],
                "fullyQualifiedName": location.module,
                "kind": "module",
            }
        )
    if location.node:
        node: dict[str, Any] = {
            "name": location.node,
            "fullyQualifiedName": f"{location.scope}/{location.node}"
            if location.scope
            else location.node,
            "kind": "member",
        }
        if location.op_type:
            node["properties"] = {"opType": location.op_type}
        logical.append(node)
    elif location.scope:
        logical.append({"name": location.scope, "kind": "namespace"})
    return logical


def _is_project_file(path: str) -> bool:
    normal = path.replace("\\", "/")
    return not (
        normal.startswith(("/", "../")) or _DRIVE.match(normal) or "/site-packages/" in normal
    )


def _location(
    subject: str, root: str | None, location: Location | None = None, problem: Problem | None = None
) -> dict[str, Any] | None:
    """Where a problem or an input error points: the project source line, else the file the
    subject names; the module, node and target callable as logical locations."""
    logical = _logical_locations(location) if location is not None else []
    physical: dict[str, Any] | None = None
    source, line = problem.source if problem is not None else (None, None)
    if source and _is_project_file(shown_path(source, root)):
        physical = {"artifactLocation": {"uri": artifact_uri(shown_path(source, root))}}
        if line:
            physical["region"] = {"startLine": line}
    path, target = _subject_location(subject)
    if target is not None:
        logical.insert(0, target)
    if physical is None and path:
        physical = {"artifactLocation": {"uri": artifact_uri(shown_path(path, root))}}
    result: dict[str, Any] = {}
    if physical is not None:
        result["physicalLocation"] = physical
    if logical:
        result["logicalLocations"] = logical
    return result or None


def _evidence(problem: Problem) -> list[dict[str, Any]]:
    return [
        {
            "rule": f.rule,
            "code": f.code,
            "severity": f.severity.label,
            "message": f.message,
            "artifact": f.location.artifact,
            "runtime": f.location.runtime,
            "suppressed": f.suppressed is not None,
        }
        for f in problem.evidence
    ]


def _message(problem: Problem) -> str:
    module = f"[{problem.module}] " if problem.module else ""
    text = f"{module}{problem.cause.message}"
    if not problem.explained:
        text += " (no finding explains it)"
    worst, repeat = problem.worst("compare"), problem.worst("repeat")
    facts = []
    if problem.artifacts:
        facts.append(f"{len(problem.artifacts)} artifact(s)")
    if problem.runtimes:
        facts.append(f"{len(problem.runtimes)} runtime(s)")
    if worst is not None:
        facts.append(f"outputs differ by up to {worst:.3g}")
    if repeat is not None:
        facts.append(f"two runs by up to {repeat:.3g}")
    return text + (f". Evidence: {', '.join(facts)}." if facts else "")


def _result(problem: Problem, rule_index: dict[str, int], root: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": problem.rule}
    if problem.rule in rule_index:
        result["ruleIndex"] = rule_index[problem.rule]
    result["level"] = LEVELS[problem.severity]
    result["message"] = {"text": printable(_message(problem))}
    location = _location(problem.subject, root, problem.cause.location, problem)
    if location is not None:
        result["locations"] = [location]
    result["partialFingerprints"] = {"exportcheck/v1": problem.fingerprint(root)}
    if problem.suppressed is not None:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": problem.suppressed.reason,
                "properties": {"entry": problem.suppressed.entry},
            }
        ]
    source, line = problem.source
    properties: dict[str, Any] = {
        "code": problem.code,
        "severity": problem.severity.label,
        "subject": problem.subject,
        "explained": problem.explained,
        "artifacts": list(problem.artifacts),
        "runtimes": list(problem.runtimes),
        "maxAbs": problem.worst("compare"),
        "maxAbsBetweenRuns": problem.worst("repeat"),
        "evidence": _evidence(problem),
    }
    if source:
        properties["source"] = {"file": shown_path(source, root), "line": line}
    if problem.cause.location.op_type:
        properties["opType"] = problem.cause.location.op_type
    result["properties"] = properties
    return result


def _error_notification(problem: InputProblem) -> dict[str, Any]:
    notification: dict[str, Any] = {
        "level": "error",
        "message": {"text": printable(f"{problem.subject}: {problem.message}")},
        "properties": {
            "subject": problem.subject,
            "error": problem.error,
            "exitCode": problem.exit_code,
        },
    }
    location = _location(problem.subject, None)
    if location is not None:
        notification["locations"] = [location]
    return notification


def _invocation(report: Report) -> dict[str, Any]:
    execution = [_error_notification(problem) for problem in report.errors]
    for skip in report.skipped:
        where = f" {skip.artifact}" if skip.artifact else ""
        device = f" on {skip.device}" if skip.device else ""
        execution.append(
            {
                "level": "note",
                "message": {
                    "text": printable(
                        f"{skip.subject}: skipped {skip.step}{where}{device}: {skip.reason}"
                    )
                },
                "properties": {"skipped": skip.to_dict()},
            }
        )
    configuration = [
        {
            "level": "warning",
            "message": {
                "text": printable(
                    f"suppression #{entry.get('entry')} for {entry.get('rule')} matched nothing"
                )
            },
            "properties": {"suppression": dict(entry)},
        }
        for entry in report.unused_suppressions
    ]
    invocation: dict[str, Any] = {
        "executionSuccessful": not report.errors,
        "exitCode": report.exit_code(),
    }
    if execution:
        invocation["toolExecutionNotifications"] = execution
    if configuration:
        invocation["toolConfigurationNotifications"] = configuration
    return invocation


def render_sarif(report: Report, *, width: int = 100, verbose: bool = False) -> str:
    rule_index = {rule.slug: index for index, rule in enumerate(report.rules)}
    failed = sum(1 for c in report.comparisons if not c.passed)
    run = {
        "tool": {
            "driver": {
                "name": "exportcheck",
                "version": __version__,
                "rules": [_descriptor(rule) for rule in report.rules],
            }
        },
        "invocations": [_invocation(report)],
        "results": [_result(problem, rule_index, report.root) for problem in report.problems],
        "properties": {
            "subjects": list(report.subjects),
            "failOn": report.fail_on,
            "summary": {
                **report.problem_counts(),
                "suppressed": len(report.problems) - len(report.active_problems),
                "findings": len(report.findings),
            },
            "comparisons": {
                "total": len(report.comparisons),
                "passed": len(report.comparisons) - failed,
                "failed": failed,
            },
        },
    }
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return dumps_valid(log, indent=2, allow_nan=False) + "\n"
