"""JSON report: the stable machine contract (schema in exportcheck/schemas/report.schema.json).

Small reports are indented for people; past `INDENT_LIMIT` findings and comparisons the report
is written compactly, since Python's JSON encoder only has a fast path without indentation and
a graph with tens of thousands of findings would otherwise spend seconds on whitespace.
Strings holding bytes that are not UTF-8 (a file name decoded with `surrogateescape`) are
written with those bytes as `\\xNN`, so the file is valid UTF-8 JSON for any parser.
"""

from __future__ import annotations

from exportcheck.reporters.escaping import dumps_valid
from exportcheck.results.report import Report

INDENT_LIMIT = 2000


def render_json(report: Report, *, width: int | None = 100, verbose: bool = False) -> str:
    data = report.to_dict()
    size = len(data["findings"]) + len(data["comparisons"])
    if size <= INDENT_LIMIT:
        return dumps_valid(data, indent=2, allow_nan=False) + "\n"
    return dumps_valid(data, separators=(",", ":"), allow_nan=False) + "\n"
