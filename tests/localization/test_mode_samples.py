"""Mode bugs keep their mode rule as the cause; localization, asked for with `localize`, points
at the same module."""

from __future__ import annotations

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
