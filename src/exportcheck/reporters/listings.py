"""Listings that are not reports: the rule catalogue, one rule's explanation, the settings.

Pure functions from plain data to text, like the report reporters; the CLI gathers the data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exportcheck.reporters.escaping import printable

LISTING_FORMATS = ("text", "json")


@dataclass(frozen=True)
class RuleEntry:
    """One rule as the catalogue shows it."""

    code: str
    slug: str
    severity: str
    stage: str
    summary: str
    doc: str


@dataclass(frozen=True)
class SettingEntry:
    """One effective setting and where its value came from."""

    key: str
    value: Any
    source: str


def render_rules(rules: Sequence[RuleEntry], format_name: str = "text") -> str:
    if format_name == "json":
        rows = [
            {
                "slug": r.slug,
                "code": r.code,
                "severity": r.severity,
                "stage": r.stage,
                "summary": r.summary,
            }
            for r in rules
        ]
        return json.dumps(rows, indent=2) + "\n"
    width = max((len(r.slug) for r in rules), default=0)
    return "".join(
        f"{r.code}  {r.slug.ljust(width)}  {r.severity:<7}  {r.stage:<7}  {r.summary}\n"
        for r in rules
    )


def render_explanation(rule: RuleEntry) -> str:
    return f"{rule.code} {rule.slug} ({rule.severity}, {rule.stage} stage)\n\n{rule.doc}\n"


def render_settings(
    config_file: str | None, settings: Sequence[SettingEntry], format_name: str = "text"
) -> str:
    if format_name == "json":
        document = {
            "config_file": config_file,
            "settings": {s.key: {"value": s.value, "source": s.source} for s in settings},
        }
        return json.dumps(document, indent=2) + "\n"
    width = max((len(s.key) for s in settings), default=0)
    lines = [f"config file: {printable(config_file) if config_file else '(none found)'}\n"]
    lines += [f"{s.key.ljust(width)}  {json.dumps(s.value)}  ({s.source})\n" for s in settings]
    return "".join(lines)
