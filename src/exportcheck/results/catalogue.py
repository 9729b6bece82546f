"""What a report says about each rule it may mention: identity and documentation, as data.

Reporters read these instead of the rule classes, so they depend on results alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from exportcheck.results.findings import Severity

DOC_SECTIONS = ("What it finds", "Why it is wrong", "How to fix")
UNEXPLAINED_FIX = "If nothing explains it"
"""An optional last section of a rule that measures a consequence (a refusal, a difference):
the fix for the case no finding of the model accounts for, where "How to fix" names a cause."""


@dataclass(frozen=True)
class RuleDescriptor:
    slug: str
    code: str
    name: str
    severity: Severity
    stage: str
    summary: str
    doc: str
