"""First-divergence localization on real mismatches no mode rule explains: each artifact is
made by a real exporter, run by ONNX Runtime, and traced back to the module, the line and the
operator where it starts to compute something else."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import exportcheck
from exportcheck.localization import localize
from exportcheck.reporters.text import render_text
from tests.localization.cases import CASES, Case, marked_line

SCHEMA = Path(exportcheck.__file__).parent / "schemas" / "report.schema.json"
CASES_FILE = str(Path(__file__).parent / "cases.py")


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Case, object]]:
    folder = tmp_path_factory.mktemp("localization")
    reports = {}
    for case in CASES:
        model, inputs = case.build()
        path = str(folder / f"{case.name}.onnx")
        case.export(model, inputs, path)
        reports[case.name] = (case, exportcheck.compare(path, model, inputs, devices="cpu"))
    return reports


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_the_problem_names_module_line_and_operator(compared, name):
    case, report = compared[name]
    assert report.exit_code() == 1
    problem = next(p for p in report.problems if p.severity.label == "error")
    assert problem.rule == "first-divergence", [p.rule for p in report.problems]
    cause = problem.cause
    assert cause.location.module == "block"
    assert cause.location.module_type == case.block.__name__
    assert cause.location.source_file == CASES_FILE
    assert cause.location.source_line == marked_line(case.marker)
    assert case.op_type in cause.location.op_type.split("/")
    # The mismatches it explains are in the same problem; nothing else is blamed.
    assert {f.rule for f in problem.evidence} == {"output-mismatch"}
    assert len(report.problems) == 1


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_downstream_error_is_reported_as_propagated(compared, name):
    _, report = compared[name]
    finding = next(f for f in report.findings if f.rule == "first-divergence")
    points = finding.detail["trace"]["points"]
    verdicts = [p["verdict"] for p in points]
    root = verdicts.index("root-cause")
    assert all(v == "agrees" for v in verdicts[:root])
    head = [p for p in points if p["module"] == "head"]
    assert head and head[-1]["verdict"] == "propagated"
    assert points[root]["max_abs"] > points[root]["atol"]
    assert finding.detail["trace"]["matched"] <= finding.detail["trace"]["candidates"]


def test_text_gives_one_line_and_a_fix_naming_what_was_found(compared):
    case, report = compared["signed-zero-atan2"]
    text = render_text(report, width=0)
    headline = next(line for line in text.splitlines() if "EC307" in line)
    assert headline.startswith(f"tests/localization/cases.py:{marked_line(case.marker)}: error")
    assert "aten.atan2.default" in headline and "`block` (SignedZeroAngle)" in headline
    fix = next(line for line in text.splitlines() if line.strip().startswith("fix:"))
    assert "aten.atan2.default" in fix and "eval()" not in fix


def test_json_carries_the_whole_trace_and_validates(compared):
    _, report = compared["custom-translation-wrong"]
    data = report.to_dict()
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(data)
    trace = next(f for f in data["findings"] if f["rule"] == "first-divergence")["trace"]
    assert trace["method"].startswith("FX node names")
    assert [p["value"] for p in trace["points"] if p["verdict"] == "root-cause"] == ["scaled_tanh"]
    mismatch = next(f for f in data["findings"] if f["rule"] == "output-mismatch")
    assert "scaled_tanh" in mismatch["fix"]


def test_unmatched_values_are_counted_not_dropped(tmp_path):
    case = CASES[0]
    model, inputs = case.build()
    path = str(tmp_path / "atan2.onnx")
    case.export(model, inputs, path)
    trace = localize(model, path, "onnx", inputs, "onnx")
    assert trace.matched + sum(trace.unmatched.values()) == trace.candidates
    assert trace.unmatched  # the Atan/Where helpers of the lowering have no FX node


def test_a_matching_artifact_localizes_to_nothing(tmp_path):
    """With --localize on an artifact that agrees: no root cause, every value agrees."""
    import torch

    from tests.localization.cases import Net, export_dynamo

    torch.manual_seed(0)
    model, inputs = Net(torch.nn.Linear(8, 8)).eval(), (torch.randn(4, 8),)
    path = str(tmp_path / "plain.onnx")
    export_dynamo(model, inputs, path)
    report = exportcheck.compare(path, model, inputs, devices="cpu", localize=True)
    assert report.exit_code() == 0
    notes = [f for f in report.findings if f.rule == "first-divergence"]
    assert notes and all(f.severity.label == "info" for f in notes)
    assert all(p["verdict"] == "agrees" for p in notes[0].detail["trace"]["points"])
