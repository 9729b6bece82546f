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


def test_assert_export_ok_lists_the_findings():
    model, inputs = build_sample("bad_train_override")
    with pytest.raises(ExportCheckFailed) as caught:
        assert_export_ok(model, inputs, formats=["torchscript-trace"], subject="override")
    message = str(caught.value)
    assert "submodule-left-training [body.norm]" in message
    assert "training-dropout [body.drop]" in message
    assert caught.value.report.exit_code() == 1


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
