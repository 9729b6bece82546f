"""Findings: what a rule, an audit or a probe says about one place in a model or artifact."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return _SEVERITY_LABELS[self._value_]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (choose from {choices})") from None


_SEVERITY_LABELS = {severity.value: severity.name.lower() for severity in Severity}


@dataclass(frozen=True)
class Location:
    """Where a finding points, each part in its own field.

    `artifact` is the artifact file; `scope` the graph or function inside it; `node` the
    operator (or buffer) name and `op_type` its operator type. `module` is the torch module
    path and `module_type` its class name. `runtime` names what produced a measured finding
    (`onnxruntime ORT_DISABLE_ALL (cpu)`, `pytorch eval (cpu)`) and `output` the model output
    it concerns. `source_file` and `source_line` point at the responsible Python code.
    """

    artifact: str | None = None
    scope: str | None = None
    node: str | None = None
    op_type: str | None = None
    module: str | None = None
    module_type: str | None = None
    runtime: str | None = None
    output: str | None = None
    source_file: str | None = None
    source_line: int | None = None

    def to_dict(self, root: str | None = None, cwd: str | None = None) -> dict[str, Any]:
        """The fields as data; with `root`, the source file and an artifact's path as reports
        show them (see `shown_path`)."""
        source_file, artifact = self.source_file, self.artifact
        if root is not None:
            from exportcheck.results.problems import shown_artifact, shown_path

            if source_file:
                source_file = shown_path(source_file, root, cwd)
            if artifact:
                artifact = shown_artifact(artifact, root, cwd)
        return {
            "artifact": artifact,
            "scope": self.scope,
            "node": self.node,
            "op_type": self.op_type,
            "module": self.module,
            "module_type": self.module_type,
            "runtime": self.runtime,
            "output": self.output,
            "source_file": source_file,
            "source_line": self.source_line,
        }


@dataclass(frozen=True)
class Suppression:
    """Why a finding was accepted by the team: the matching ignore entry's reason."""

    reason: str
    entry: int


@dataclass(frozen=True)
class Finding:
    """One finding. Made by `Rule.finding` alone, so `rule`, `code` and `stage` are always
    those of the rule class that stands behind it."""

    rule: str
    code: str
    severity: Severity
    message: str
    subject: str
    location: Location = field(default_factory=Location)
    suppressed: Suppression | None = None
    stage: str = "inspect"
    detail: Mapping[str, Any] | None = field(default=None, compare=False)
    """What a measurement found beyond the message: `fix`, a fix line naming it, and `trace`,
    a localization's whole trace (see exportcheck.localization)."""

    def with_subject(self, subject: str) -> Finding:
        return replace(self, subject=subject)

    def to_dict(self, root: str | None = None, cwd: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "code": self.code,
            "severity": _SEVERITY_LABELS[self.severity],
            "message": self.message,
            "subject": self.subject,
            "location": self.location.to_dict(root, cwd),
            "stage": self.stage,
        }
        if self.suppressed is not None:
            data["suppressed"] = {"reason": self.suppressed.reason, "entry": self.suppressed.entry}
        if self.detail:
            data.update({key: self.detail[key] for key in ("fix", "trace") if key in self.detail})
        return data
