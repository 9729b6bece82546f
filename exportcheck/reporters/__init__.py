"""Format name to reporter: each a pure function from a Report to text; callers write it."""

from __future__ import annotations

from collections.abc import Callable

from exportcheck.allocation import gc_paused
from exportcheck.report import Report
from exportcheck.reporters.json_format import render_json
from exportcheck.reporters.junit import render_junit
from exportcheck.reporters.markdown import render_markdown
from exportcheck.reporters.sarif import render_sarif
from exportcheck.reporters.text import render_text

Reporter = Callable[[Report], str]

REPORTERS: dict[str, Reporter] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
    "sarif": render_sarif,
    "markdown": render_markdown,
}


def render(report: Report, format_name: str) -> str:
    try:
        reporter = REPORTERS[format_name]
    except KeyError:
        raise ValueError(
            f"unknown format {format_name!r} (choose from {', '.join(REPORTERS)})"
        ) from None
    with gc_paused():
        return reporter(report)
