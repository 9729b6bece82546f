"""`assert_export_ok` and the pytest plugin, as a team would use them in its own suite."""

from __future__ import annotations

import pytest

from exportcheck.testing import ExportCheckFailed, assert_export_ok
from tests.conftest import build_sample

pytest_plugins = ["pytester"]


def test_assert_export_ok_passes_a_clean_model():
    model, inputs = build_sample("custom_mode_layer")
    report = assert_export_ok(model, inputs, formats=["onnx-legacy"])
    assert report.ok


def test_assert_export_ok_lists_the_problems_with_place_and_fix():
    model, inputs = build_sample("bad_train_override")
    with pytest.raises(ExportCheckFailed) as caught:
        assert_export_ok(model, inputs, formats=["torchscript-trace"], subject="override")
    message = str(caught.value)
    report = caught.value.report
    # Problems, not findings: the training-mode Dropout is evidence of the override's problem.
    assert message.startswith(f"exportcheck: {len(report.failing_problems())} problem(s)")
    assert len(report.failing_problems()) < len(report.failing_findings())
    assert "bad_train_override.py:" in message
    assert "EC201 submodule-left-training [body.norm]" in message
    assert "EC201 submodule-left-training [body.drop]" in message
    assert "also training-dropout" in message
    assert "fix: In the overriding `train(self, mode=True)`" in message
    assert report.exit_code() == 1


def test_the_fix_line_is_the_one_the_measurement_found_as_in_the_text_report():
    """A localized divergence's fix names the operator it found, not its rule's generic fix;
    the assertion message gives the same fix line as the text report."""
    from exportcheck.reporters.text import render_text
    from tests.localization.cases import CASES

    case = next(c for c in CASES if c.name == "signed-zero-atan2")
    model, inputs = case.build()
    with pytest.raises(ExportCheckFailed) as caught:
        assert_export_ok(model, inputs, formats=["onnx"], probes=False, localize=True)
    report = caught.value.report
    assert [p.rule for p in report.failing_problems()] == ["first-divergence"]
    message_fixes = [
        line.strip() for line in str(caught.value).splitlines() if line.strip().startswith("fix:")
    ]
    text_fixes = [
        line.strip()
        for line in render_text(report, width=0).splitlines()
        if line.strip().startswith("fix:")
    ]
    assert message_fixes == text_fixes
    assert "aten.atan2.default" in message_fixes[0] and "eval()" not in message_fixes[0]


def test_a_call_ignores_selects_and_suppresses_rules():
    model, inputs = build_sample("bad_train_override")
    options = dict(formats=["torchscript-trace"], probes=False, subject="override")
    with pytest.raises(ExportCheckFailed) as caught:
        assert_export_ok(model, inputs, ignore=["EC201"], **options)
    assert "submodule-left-training" not in {f.rule for f in caught.value.report.findings}
    report = assert_export_ok(model, inputs, select=["noop-dropout"], **options)
    assert report.findings == ()
    reason = "frozen on purpose in this test"
    report = assert_export_ok(
        model, inputs, suppress=[{"rule": "submodule-left-training", "reason": reason}], **options
    )
    assert {p.suppressed.reason for p in report.problems} == {reason}


def test_the_project_settings_judge_the_check(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.exportcheck]\nfail-on = "never"\nformats = ["torchscript-trace"]\n'
    )
    monkeypatch.chdir(tmp_path)
    model, inputs = build_sample("bad_train_override")
    report = assert_export_ok(model, inputs, probes=False)
    assert report.failing_findings("error") and report.fail_on == "never"
    assert {c.artifact_format for c in report.comparisons} == {"torchscript-trace"}


def test_plugin_fixture_and_marker(pytester):
    pytester.makepyfile(
        """
        import pytest
        import torch
        import torch.nn.functional as F

        class Bad(torch.nn.Module):
            def forward(self, x):
                return F.dropout(x, 0.5)

        @pytest.mark.exportcheck(formats=["torchscript-trace"], devices="cpu")
        def test_clean(export_check):
            export_check(torch.nn.Linear(3, 2), (torch.randn(2, 3),))

        @pytest.mark.exportcheck(formats=["torchscript-trace"])
        def test_bad(export_check):
            export_check(Bad(), (torch.randn(2, 3),))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*nondeterministic-eval*"])
