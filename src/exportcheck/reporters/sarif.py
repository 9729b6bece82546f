"""SARIF 2.1.0 report for code scanning: the rule catalogue and one result per problem.

One run. ``tool.driver.rules`` lists every rule in the catalogue with its documentation as
``help`` (no ``helpUri``: the project publishes no documentation site to point at).
``results`` holds one result per problem at or above the report's fail-on threshold (errors
and warnings for ``never``; every problem with ``verbose``), so a clean model uploads no notes.
Each result's physical location is the responsible source file with ``region.startLine``;
where no repository source is known (a library class, an artifact), the file the subject
names, at line 1. Every URI is relative to the repository root under the ``uriBaseId``
``%SRCROOT%``, which ``originalUriBaseIds`` maps to the root as a file URI. A file outside the
repository gets no physical location (no viewer could open it), and no path in the log is
absolute: see `shown_path`. Artifacts, runtimes, modules and nodes are never file URIs: the
module is a logical location, and artifacts, runtimes, the worst differences and every
evidence finding go into the result's properties. ``partialFingerprints`` hold a hash of rule,
subject, module and source file that stays the same across runs, machines, working folders
and temporary folders.

A suppressed problem keeps its result with an external suppression and the team's reason.
Input errors become error notifications of the invocation, which is then not successful;
skipped steps become notes and suppressions that matched nothing become configuration
warnings.

Message texts are shown to people (a code-scanning alert, a log viewer), so the names in them
are escaped (`printable`); locations and properties keep the exact strings, for tools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from exportcheck import __version__
from exportcheck.reporters.escaping import dumps_valid, printable
from exportcheck.results.catalogue import DOC_SECTIONS, UNEXPLAINED_FIX, RuleDescriptor
from exportcheck.results.findings import Location, Severity
from exportcheck.results.problems import (
    OUTSIDE,
    Problem,
    library_relative,
    shown_artifact,
    shown_path,
)
from exportcheck.results.report import InputProblem, Report, fail_threshold

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}

_FILE_TARGET = re.compile(r"^(?P<file>.+\.py):(?P<attr>[A-Za-z_][\w.]*)$")
_MODULE_TARGET = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<attr>[A-Za-z_][\w.]*)$"
)
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")

SOURCE_ROOT = "%SRCROOT%"
"""The `uriBaseId` of every artifact location: the repository root, which
`originalUriBaseIds` gives as a file URI (the one absolute path in the log, as SARIF means it
to be: a viewer on another machine replaces it with its own checkout)."""


@dataclass(frozen=True)
class _Paths:
    root: str
    cwd: str

    def shown(self, path: str) -> str:
        return shown_path(path, self.root, self.cwd)

    def artifact(self, name: str | None) -> str | None:
        return shown_artifact(name, self.root, self.cwd) if name else name


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
        if line.strip() in (*DOC_SECTIONS, UNEXPLAINED_FIX) and not line.startswith(" "):
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


def _physical(path: str, line: int | None) -> dict[str, Any] | None:
    """A place in the repository; none for a file outside it, which no viewer could open."""
    if path.startswith(OUTSIDE + "/"):
        return None
    return {
        "artifactLocation": {"uri": artifact_uri(path), "uriBaseId": SOURCE_ROOT},
        "region": {"startLine": line or 1},
    }


def _location(
    subject: str, paths: _Paths, location: Location | None = None, problem: Problem | None = None
) -> dict[str, Any] | None:
    """Where a problem or an input error points: the project source line, else line 1 of the
    file the subject names; the module, node and target callable as logical locations."""
    logical = _logical_locations(location) if location is not None else []
    physical: dict[str, Any] | None = None
    source, line = problem.source if problem is not None else (None, None)
    if source and library_relative(source) is None:
        physical = _physical(paths.shown(source), line)
    path, target = _subject_location(subject)
    if target is not None:
        logical.insert(0, target)
    if physical is None and path and library_relative(path) is None:
        physical = _physical(paths.shown(path), None)
    result: dict[str, Any] = {}
    if physical is not None:
        result["physicalLocation"] = physical
    if logical:
        result["logicalLocations"] = logical
    return result or None


def _evidence(problem: Problem, paths: _Paths) -> list[dict[str, Any]]:
    return [
        {
            "rule": f.rule,
            "code": f.code,
            "severity": f.severity.label,
            "message": f.message,
            "artifact": paths.artifact(f.location.artifact),
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
    worst, repeat = problem.worst_text("compare"), problem.worst_text("repeat")
    facts = []
    if problem.artifacts:
        facts.append(f"{len(problem.artifacts)} artifact(s)")
    if problem.runtimes:
        facts.append(f"{len(problem.runtimes)} runtime(s)")
    if worst is not None:
        facts.append(f"outputs differ by up to {worst}")
    if repeat is not None:
        facts.append(f"two runs by up to {repeat}")
    return text + (f". Evidence: {', '.join(facts)}." if facts else "")


def _result(problem: Problem, rule_index: dict[str, int], paths: _Paths) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": problem.rule}
    if problem.rule in rule_index:
        result["ruleIndex"] = rule_index[problem.rule]
    result["level"] = LEVELS[problem.severity]
    result["message"] = {"text": printable(_message(problem))}
    location = _location(problem.subject, paths, problem.cause.location, problem)
    if location is not None:
        result["locations"] = [location]
    result["partialFingerprints"] = {"exportcheck/v1": problem.fingerprint(paths.root, paths.cwd)}
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
        "artifacts": [paths.artifact(a) for a in problem.artifacts],
        "runtimes": list(problem.runtimes),
        "maxAbs": problem.worst("compare"),
        "maxAbsBetweenRuns": problem.worst("repeat"),
        "evidence": _evidence(problem, paths),
    }
    if source:
        properties["source"] = {"file": paths.shown(source), "line": line}
    if problem.cause.location.op_type:
        properties["opType"] = problem.cause.location.op_type
    result["properties"] = properties
    return result


def _error_notification(problem: InputProblem, paths: _Paths) -> dict[str, Any]:
    notification: dict[str, Any] = {
        "level": "error",
        "message": {"text": printable(f"{problem.subject}: {problem.message}")},
        "properties": {
            "subject": problem.subject,
            "error": problem.error,
            "exitCode": problem.exit_code,
        },
    }
    location = _location(problem.subject, paths)
    if location is not None:
        notification["locations"] = [location]
    return notification


def _invocation(report: Report, paths: _Paths) -> dict[str, Any]:
    execution = [_error_notification(problem, paths) for problem in report.errors]
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


def reported_problems(report: Report, verbose: bool) -> list[Problem]:
    """The problems a code-scanning upload or an annotation run shows: those at or above the
    report's fail-on threshold (errors and warnings for `never`), suppressed ones included so
    their alerts close with the team's reason; every problem with `verbose`."""
    threshold = results_threshold(report, verbose)
    return [p for p in report.problems if p.severity >= threshold]


def results_threshold(report: Report, verbose: bool) -> Severity:
    if verbose:
        return Severity.INFO
    return fail_threshold(report.fail_on) or Severity.WARNING


def _root_uri(root: str) -> str:
    uri = artifact_uri(root)
    return uri if uri.endswith("/") else uri + "/"


def render_sarif(report: Report, *, width: int | None = 100, verbose: bool = False) -> str:
    paths = _Paths(report.root, report.cwd)
    rule_index = {rule.slug: index for index, rule in enumerate(report.rules)}
    failed = sum(1 for c in report.comparisons if not c.passed)
    shown = reported_problems(report, verbose)
    run = {
        "tool": {
            "driver": {
                "name": "exportcheck",
                "version": __version__,
                "rules": [_descriptor(rule) for rule in report.rules],
            }
        },
        "invocations": [_invocation(report, paths)],
        "originalUriBaseIds": {SOURCE_ROOT: {"uri": _root_uri(report.root)}},
        "results": [_result(problem, rule_index, paths) for problem in shown],
        "properties": {
            "subjects": list(report.subjects),
            "failOn": report.fail_on,
            "resultsFrom": results_threshold(report, verbose).label,
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
