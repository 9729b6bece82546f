"""Findings: what a rule, an audit or a probe says about one place in a model or artifact."""

from __future__ import annotations

import enum
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
    """Where a finding points: the artifact file, the graph scope, the node, and its module."""

    artifact: str | None = None
    scope: str | None = None
    node: str | None = None
    op_type: str | None = None
    module: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "scope": self.scope,
            "node": self.node,
            "op_type": self.op_type,
            "module": self.module,
        }


@dataclass(frozen=True)
class Suppression:
    """Why a finding was accepted by the team: the matching ignore entry's reason."""

    reason: str
    entry: int


@dataclass(frozen=True)
class Finding:
    rule: str
    code: str
    severity: Severity
    message: str
    subject: str
    location: Location = field(default_factory=Location)
    suppressed: Suppression | None = None

    def with_subject(self, subject: str) -> Finding:
        return replace(self, subject=subject)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "code": self.code,
            "severity": _SEVERITY_LABELS[self.severity],
            "message": self.message,
            "subject": self.subject,
            "location": self.location.to_dict(),
        }
        if self.suppressed is not None:
            data["suppressed"] = {"reason": self.suppressed.reason, "entry": self.suppressed.entry}
        return data
