"""Mode bugs keep their mode rule as the cause; localization, asked for with `localize`, points
at the same module."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import exportcheck
from tests.conftest import build_sample

MODE_RULES = {"training-dropout", "training-batchnorm", "submodule-left-training"}


@pytest.mark.parametrize("name", ["bad_functional_dropout", "bad_train_override"])
def test_mode_rule_stays_the_cause_and_localization_agrees(name):
    model, inputs = build_sample(name)
    report = exportcheck.validate(
        model, inputs, formats=["onnx"], devices="cpu", probes=False, localize=True
    )
    localized = [
        f for f in report.findings if f.rule == "first-divergence" and f.severity.label == "error"
    ]
    assert localized
    for finding in localized:
        problem = next(p for p in report.problems if finding in p.members)
        assert problem.rule in MODE_RULES, problem.rule
        assert problem.module == finding.location.module
    assert not [p for p in report.problems if p.rule == "first-divergence"]


def test_a_localized_report_with_infinite_relative_differences_writes_as_json(tmp_path):
    """A training Dropout zeroes values the model keeps, and where the eval model's value is an
    exact zero the relative difference is infinite: the JSON report still writes, and reads."""
    from tests.cli.processes import exportcheck as run_cli

    samples = Path(__file__).resolve().parents[2] / "sample_models"
    done = run_cli(
        "validate", f"{samples}/bad_functional_dropout.py:build", "--localize",
        "--formats", "onnx-legacy", "--device", "cpu", "-q", "-o", "json=report.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    text = (tmp_path / "report.json").read_text()
    report = json.loads(text)
    assert any(f["rule"] == "training-dropout" for f in report["findings"])
    assert '"inf"' in text  # written as the schema's string for a non-finite measure
    schema = json.loads(
        (Path(exportcheck.__file__).parent / "schemas/report.schema.json").read_text()
    )
    jsonschema.Draft202012Validator(schema).validate(report)
