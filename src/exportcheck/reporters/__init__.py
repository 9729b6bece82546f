"""Format name to reporter: each a pure function from a Report (and the terminal width, and
whether to be verbose) to text; callers write it.

A reporter's module is imported when its format is first rendered: a run renders one or two
formats, and the others' imports (xml.etree, the rule catalogue) are not free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # `exportcheck rules` imports this package and needs no report
    from exportcheck.results.report import Report

DEFAULT_WIDTH = 100
"""What the text report wraps to when the caller knows no terminal width."""


class Reporter(Protocol):
    def __call__(self, report: Report, *, width: int | None = ..., verbose: bool = ...) -> str: ...


REPORTERS: dict[str, str] = {
    "text": "exportcheck.reporters.text:render_text",
    "json": "exportcheck.reporters.json_format:render_json",
    "junit": "exportcheck.reporters.junit:render_junit",
    "sarif": "exportcheck.reporters.sarif:render_sarif",
    "markdown": "exportcheck.reporters.markdown:render_markdown",
    "github": "exportcheck.reporters.github:render_github",
}


def reporter_for(format_name: str) -> Reporter:
    try:
        target = REPORTERS[format_name]
    except KeyError:
        raise ValueError(
            f"unknown format {format_name!r} (choose from {', '.join(REPORTERS)})"
        ) from None
    module, _, function = target.partition(":")
    reporter: Reporter = getattr(importlib.import_module(module), function)
    return reporter


def render(
    report: Report, format_name: str, *, width: int | None = DEFAULT_WIDTH, verbose: bool = False
) -> str:
    """The report in one format. `width` is the terminal's (the text report wraps to it; None
    or 0: no wrapping); `verbose` adds every comparison and the info problems (to SARIF and
    annotations too: every problem, not only those at or above the fail-on threshold)."""
    return reporter_for(format_name)(report, width=width, verbose=verbose)
