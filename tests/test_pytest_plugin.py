"""The pytest plugin in a team's own project: a failure reads as the problems (place, rule,
fix) in a few lines, the project's settings and a test's own judge it, and exportcheck's
own loading leaves no warning in the team's run."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = """
import pytest
import torch
import torch.nn.functional as F


class Bad(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 64)

    def forward(self, x):
        return F.dropout(self.fc(x), 0.1)  # the bug


def inputs():
    return (torch.randn(8, 64),)


@pytest.mark.exportcheck(formats=["onnx", "torchscript-trace"])
def test_bad(export_check):
    export_check(Bad(), inputs())


@pytest.mark.exportcheck(formats=["torchscript-trace", "exported-program"])
def test_clean(export_check):
    report = export_check(torch.nn.Linear(64, 2), inputs())
    assert {c.artifact_format for c in report.comparisons} == {"torchscript-trace", "exported-program"}


@pytest.mark.exportcheck(
    formats=["torchscript-trace"],
    probes=False,
    ignore=["training-dropout", "output-mismatch", "runtime-nondeterminism"],
)
def test_marker_ignores(export_check):
    report = export_check(Bad(), inputs())
    assert report.findings == ()


@pytest.mark.exportcheck(formats=["torchscript-trace"], probes=False)
def test_call_selects(export_check):
    report = export_check(Bad(), inputs(), select=["submodule-left-training"])
    assert report.findings == ()


@pytest.mark.exportcheck(formats=["torchscript-trace"], probes=False)
def test_project_suppresses(export_check):
    report = export_check(Bad(), inputs())
    assert report.problems[0].suppressed.reason == "reviewed: a test of the project's settings"
"""

PROJECT = """
[tool.exportcheck]
[[tool.exportcheck.ignore]]
rule = "training-dropout"
subject = "*::test_project_suppresses"
reason = "reviewed: a test of the project's settings"
"""


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """A project with its own pyproject.toml and tests, run by pytest as its team would."""
    project: Path = tmp_path_factory.mktemp("project")
    (project / "pyproject.toml").write_text(textwrap.dedent(PROJECT))
    (project / "test_exports.py").write_text(TESTS)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=600,
    )


def failure_section(output: str, test: str) -> list[str]:
    """The lines pytest prints for one test's failure, from its `___ test ___` header on."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"_+ {test} _+", line))
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"^(_{3,} \S|={3,})", lines[i]))
    return lines[start:end]


def test_only_the_buggy_model_fails(scratch_run):
    assert re.search(r"\b1 failed, 4 passed\b", scratch_run.stdout), scratch_run.stdout


def test_a_failure_reads_as_its_problem_in_under_20_lines(scratch_run):
    section = failure_section(scratch_run.stdout, "test_bad")
    text = "\n".join(section)
    assert len(section) < 20, text
    bug_line = TESTS.splitlines().index("        return F.dropout(self.fc(x), 0.1)  # the bug") + 1
    assert f"test_exports.py:{bug_line}: error: EC101 training-dropout" in text
    assert "fix: Call `model.eval()`" in text
    assert "exportcheck/" not in text  # no frame of exportcheck's own
    assert "tensor(" not in text


def test_the_summary_line_names_the_problem(scratch_run):
    assert "FAILED test_exports.py::test_bad - exportcheck.testing.ExportCheckFailed" in (
        scratch_run.stdout
    )


def test_exportcheck_leaves_no_warning_in_the_run(scratch_run):
    assert "warnings summary" not in scratch_run.stdout, scratch_run.stdout
    assert "DEBUG" not in scratch_run.stdout  # torch's trace log, captured by pytest
