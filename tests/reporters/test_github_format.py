"""GitHub Actions annotations: one workflow command per problem, escaped as the runner reads
them (actions/toolkit `command.ts`), at the repository file and line."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import unquote

import pytest

from exportcheck.reporters import render
from exportcheck.reporters.files import REPORT_SUFFIXES, format_for_path
from exportcheck.reporters.github import escape_message, escape_property, render_github
from exportcheck.results.findings import Location, Severity
from exportcheck.results.report import Report
from exportcheck.rules import TrainingDropout
from tests.reporters.conftest import ROOT, RULES, SAMPLES

# `::command key=value,key=value::message`: nothing unescaped may hold `:`, `,` or a newline.
COMMAND = re.compile(
    r"^::(error|warning|notice)(?: ((?:[a-zA-Z]+=[^:,\r\n]*)(?:,[a-zA-Z]+=[^:,\r\n]*)*))?::([^\r\n]*)$"
)


def parse(line: str) -> tuple[str, dict[str, str], str]:
    """A workflow command read back as the runner reads it."""
    match = COMMAND.match(line)
    assert match is not None, line
    command, properties, message = match.groups()
    values = {}
    for pair in (properties or "").split(",") if properties else []:
        key, _, value = pair.partition("=")
        values[key] = unquote(value)
    return command, values, unquote(message)


def test_one_annotation_per_problem_at_its_line() -> None:
    lines = render_github(SAMPLES["grouped"]).splitlines()
    assert len(lines) == 3
    command, properties, message = parse(lines[0])
    assert command == "error"
    assert properties == {
        "file": "models/tagger.py",
        "line": "14",
        "title": "EC101 training-dropout",
    }
    assert message.splitlines()[0] == "[head] Dropout runs in training mode"
    assert message.splitlines()[2].startswith("fix: Call `model.eval()`")
    # a library class is not in the repository: the target file at line 1
    assert parse(lines[1])[1]["file"] == "models/frozen.py" and parse(lines[1])[1]["line"] == "1"
    # a mismatch nothing explains is not told to export from model.eval()
    _, odd, unexplained = parse(lines[2])
    assert odd["title"] == "EC301 output-mismatch"
    assert unexplained.splitlines()[2].startswith(
        "fix: No mode problem accounts for the difference"
    )


def test_severity_maps_to_the_command_and_the_threshold_applies() -> None:
    report = SAMPLES["findings"]
    default = [parse(line)[0] for line in render_github(report).splitlines()]
    # the suppressed error is accepted: no annotation
    assert default == ["error", "error"]
    verbose = [parse(line)[0] for line in render_github(report, verbose=True).splitlines()]
    assert verbose == ["error", "warning", "notice", "error"]
    warnings = render_github(replace(report, fail_on="warning")).splitlines()
    assert [parse(line)[0] for line in warnings] == ["error", "warning", "error"]


def test_input_errors_and_unused_suppressions() -> None:
    lines = render_github(SAMPLES["skipped_and_errors"]).splitlines()
    assert [parse(line)[0] for line in lines] == ["error", "error", "warning"]
    assert parse(lines[0]) == (
        "error",
        {"title": "exportcheck: UnreadableArtifactError"},
        "broken.onnx: not an ONNX model (protobuf parse failed)",
    )


def test_a_clean_report_is_one_notice() -> None:
    (line,) = render_github(SAMPLES["clean"]).splitlines()
    assert parse(line)[0] == "notice" and "passed" in line


@pytest.mark.parametrize(
    ("raw", "message", "value"),
    [
        ("100%", "100%25", "100%25"),
        ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
        ("a:b,c", "a:b,c", "a%3Ab%2Cc"),
        ("%0A", "%250A", "%250A"),
    ],
)
def test_escaping_as_documented(raw: str, message: str, value: str) -> None:
    assert escape_message(raw) == message
    assert escape_property(raw) == value
    assert unquote(escape_property(raw)) == raw


def test_hostile_names_stay_on_one_line_and_read_back() -> None:
    subject = "mo,del:s/we%ird,name.py:build"
    finding = TrainingDropout.finding(
        "Dropout in node a\nb, 100% sure :: ::error file=x::pwned",
        subject,
        Location(
            module="enc,oder:drop",
            source_file=f"{ROOT}/we,ird:dir/100%/m\nod.py",
            source_line=7,
        ),
    )
    report = Report(subjects=(subject,), findings=(finding,), rules=RULES, root=ROOT, cwd=ROOT)
    text = render(report, "github")
    (line,) = text.splitlines()
    command, properties, message = parse(line)
    assert command == "error"
    # a newline inside a name is shown escaped, not as a line of the message
    assert properties == {
        "file": "we,ird:dir/100%/m\\x0aod.py",
        "line": "7",
        "title": "EC101 training-dropout",
    }
    first = message.splitlines()[0]
    assert first == "[enc,oder:drop] Dropout in node a\\x0ab, 100% sure :: ::error file=x::pwned"
    assert message.splitlines()[-1] == f"subject: {subject}"


def test_no_file_for_a_module_target() -> None:
    lines = render_github(SAMPLES["odd_paths"], verbose=True).splitlines()
    assert "file" not in parse(lines[0])[1]
    assert parse(lines[0])[2].splitlines()[-1] == "subject: pkg.models:build"


def test_info_problem_is_a_notice() -> None:
    note = replace(
        TrainingDropout.finding("n", "m.onnx", Location(module="h")), severity=Severity.INFO
    )
    report = Report(subjects=("m.onnx",), findings=(note,), rules=RULES, fail_on="info")
    assert parse(render_github(report).splitlines()[0])[0] == "notice"


def test_no_file_suffix_picks_annotations() -> None:
    assert "github" not in REPORT_SUFFIXES.values()
    for name in ("annotations.txt", "out.github", "report.log", "a"):
        assert format_for_path(name, "text") == "text"
