"""Every format renders every sample report, purely, and the new reporters stay CLI-free."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from exportcheck.reporters import REPORTERS, render, reporter_for
from exportcheck.results.report import Report

REPORTER_DIR = Path(__file__).resolve().parents[2] / "src" / "exportcheck" / "reporters"


@pytest.mark.parametrize("format_name", sorted(REPORTERS))
def test_every_format_renders_every_sample(format_name: str, sample_report: Report) -> None:
    first = render(sample_report, format_name)
    assert isinstance(first, str) and first.endswith("\n")
    assert render(sample_report, format_name) == first


def test_ci_formats_are_registered() -> None:
    assert {"junit", "sarif", "markdown"} <= set(REPORTERS)


@pytest.mark.parametrize("module", ["junit.py", "sarif.py", "markdown.py"])
def test_reporter_imports_no_cli_or_io(module: str) -> None:
    tree = ast.parse((REPORTER_DIR / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"print", "open"}, f"{module} calls {node.func.id}()"
    assert not imported & {"typer", "rich", "click", "torch"}


@pytest.mark.parametrize("format_name", sorted(REPORTERS))
def test_registry_names_a_renderer_for_every_format(format_name: str) -> None:
    assert callable(reporter_for(format_name))


def test_unknown_format_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown format 'yaml' \\(choose from text, json"):
        reporter_for("yaml")
