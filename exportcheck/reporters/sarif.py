"""SARIF 2.1.0 report for code-scanning services: the rule catalogue and one result per finding.

One run. ``tool.driver.rules`` lists every rule in the catalogue, so a viewer can show each
rule's documentation. ``results`` holds the findings only: comparisons that failed are already
``output-mismatch`` findings, and their counts go into ``run.properties.comparisons``. A
suppressed finding keeps its result with an external suppression and the team's reason.
Input errors become error notifications of the invocation, which is then not successful;
skipped steps become notes and suppressions that matched nothing become configuration
warnings.

A finding's physical location is its artifact file, else the file of its subject; a subject
that names no file (``package.module:build``) gets a logical location instead. The torch
module path, the graph scope and the node are logical locations.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from exportcheck import __version__
from exportcheck.results.catalogue import DOC_SECTIONS, RuleDescriptor
from exportcheck.results.findings import Finding, Location, Severity
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
    # Percent-encodes a colon too, which would otherwise read as a URI scheme.
    return quote(posix, safe="/")


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


def _location(
    subject: str, artifact: str | None = None, location: Location | None = None
) -> dict[str, Any] | None:
    """Where a finding or an input error points: the artifact file, else the subject's file."""
    logical = _logical_locations(location) if location is not None else []
    path = artifact
    if path is None:
        path, target = _subject_location(subject)
        if target is not None:
            logical.insert(0, target)
    result: dict[str, Any] = {}
    if path:
        result["physicalLocation"] = {"artifactLocation": {"uri": artifact_uri(path)}}
    if logical:
        result["logicalLocations"] = logical
    return result or None


def _result(finding: Finding, rule_index: dict[str, int]) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": finding.rule}
    if finding.rule in rule_index:
        result["ruleIndex"] = rule_index[finding.rule]
    result["level"] = LEVELS[finding.severity]
    result["message"] = {"text": finding.message}
    location = _location(finding.subject, finding.location.artifact, finding.location)
    if location is not None:
        result["locations"] = [location]
    if finding.suppressed is not None:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": finding.suppressed.reason,
                "properties": {"entry": finding.suppressed.entry},
            }
        ]
    properties: dict[str, Any] = {
        "code": finding.code,
        "severity": finding.severity.label,
        "subject": finding.subject,
    }
    if finding.location.op_type:
        properties["opType"] = finding.location.op_type
    result["properties"] = properties
    return result


def _error_notification(problem: InputProblem) -> dict[str, Any]:
    notification: dict[str, Any] = {
        "level": "error",
        "message": {"text": f"{problem.subject}: {problem.message}"},
        "properties": {
            "subject": problem.subject,
            "error": problem.error,
            "exitCode": problem.exit_code,
        },
    }
    location = _location(problem.subject)
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
                    "text": f"{skip.subject}: skipped {skip.step}{where}{device}: {skip.reason}"
                },
                "properties": {"skipped": skip.to_dict()},
            }
        )
    configuration = [
        {
            "level": "warning",
            "message": {
                "text": f"suppression #{entry.get('entry')} for {entry.get('rule')} matched nothing"
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


def render_sarif(report: Report) -> str:
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
        "results": [_result(finding, rule_index) for finding in report.findings],
        "properties": {
            "subjects": list(report.subjects),
            "failOn": report.fail_on,
            "summary": {
                **report.counts(),
                "suppressed": len(report.findings) - len(report.active_findings),
            },
            "comparisons": {
                "total": len(report.comparisons),
                "passed": len(report.comparisons) - failed,
                "failed": failed,
            },
        },
    }
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(log, indent=2, allow_nan=False) + "\n"
