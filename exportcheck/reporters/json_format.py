"""JSON report: the stable machine contract (schema in exportcheck/schemas/report.schema.json)."""

from __future__ import annotations

import json

from exportcheck.report import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"
