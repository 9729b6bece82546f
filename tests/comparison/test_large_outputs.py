"""Comparisons judge a difference relative to the magnitude of the outputs compared, and their
messages give the relative figure beside the absolute one: on logits near 1e8, float32 rounding
leaves ~100 on elements near zero, which no elementwise rtol allows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import exportcheck
from exportcheck.comparison.artifact_checks import attribution
from exportcheck.comparison.reference import ModelRun, Tolerances, quiet_progress
from exportcheck.comparison.runtimes import pytorch_runner
from exportcheck.numerics.metrics import measure
from exportcheck.reporters import render
from exportcheck.results.comparison import Tolerance
from tests.localization.cases import quiet


class LargeLogits(nn.Module):
    """A small CNN scaled to logits near 1e8. The `.float()` casts are common in real models and
    make the float64 copy raise, so the model's rounding noise cannot widen the tolerance: the
    comparison stands on the magnitude alone."""

    def __init__(self, batch_norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.norm = nn.BatchNorm2d(32) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 12 * 12, 100)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm(self.conv(x.float())) * 1e3)
        y = torch.relu(self.conv2(y) * 1e2)
        return self.fc(y.flatten(1).float()) * 1e4


def _model(batch_norm: bool = False) -> tuple[nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    model = LargeLogits(batch_norm)
    if batch_norm:  # running statistics that differ from any one batch's
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(8, 3, 12, 12) * 2 + 1)
    return model.eval(), (torch.randn(4, 3, 12, 12),)


def test_rounding_on_large_logits_passes_every_comparison():
    model, inputs = _model()
    report = exportcheck.validate(
        model, inputs, formats=["onnx-legacy", "torchscript-trace"], devices="cpu", probes=False
    )
    compared = [c for c in report.comparisons if c.run == "compare"]
    assert compared and all(c.passed for c in compared), [
        (c.runtime_label, c.metrics.max_abs, c.tolerance.atol) for c in compared if not c.passed
    ]
    # The model is one whose noise cannot be measured: the magnitude decides, and is kept.
    assert all("largest magnitude" in c.tolerance.source for c in compared)
    assert all(c.metrics.magnitude and c.metrics.magnitude > 1e7 for c in compared)
    assert report.exit_code() == 0


def test_a_training_mode_export_of_large_logits_fails_with_the_relative_figure(tmp_path):
    model, inputs = _model(batch_norm=True)
    path = str(tmp_path / "train.onnx")
    with quiet(), torch.no_grad():
        model.train()
        torch.onnx.export(
            model, inputs, path, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE
        )
        model.eval()
    report = exportcheck.compare(path, model, inputs, devices="cpu", runtimes=["onnxruntime"])
    assert report.exit_code() == 1
    (mismatch, *_) = [f for f in report.findings if f.rule == "output-mismatch"]
    assert "max abs " in mismatch.message
    assert ", relative " in mismatch.message and " to the magnitude " in mismatch.message
    worst = max((c for c in report.comparisons if not c.passed), key=lambda c: c.metrics.max_abs)
    assert f"relative {worst.metrics.relative:.2g}" in mismatch.message
    assert worst.metrics.relative > 1e-3  # a mode bug, far above rounding
    assert worst.to_dict()["metrics"]["magnitude"] == worst.metrics.magnitude
    text = render(report, "text", width=None, verbose=True)
    assert f"outputs differ by up to {worst.metrics.max_abs:.3g} (relative " in text
    assert f"max abs {worst.metrics.max_abs:.3g} (relative " in text  # each comparison line


def test_comparison_tolerance_scales_with_the_magnitude_but_never_the_command_line():
    expected = np.array([7.5e7, -3.0, 0.0], dtype=np.float32)
    scaled = Tolerances().for_output("y", expected, expected)
    assert scaled.rtol == 1.3e-6
    assert scaled.atol == pytest.approx(64 * np.finfo(np.float32).eps * 7.5e7)
    near_zero = expected + np.array([0.0, 120.0, -120.0], dtype=np.float32)
    assert measure(near_zero, expected, scaled).mismatched == 0
    assert Tolerances(atol=1e-5).for_output("y", expected, expected).atol == 1e-5
    assert Tolerances().for_output("y", np.ones(3, dtype=np.float32)).atol == 1e-5


def test_magnitude_and_relative_are_measured():
    expected = np.array([2e8, -1.0, 0.5], dtype=np.float32)
    metrics = measure(expected + np.float32(200.0), expected, Tolerance(1.3e-6, 1e-5))
    assert metrics.magnitude == pytest.approx(2e8)
    assert metrics.relative == pytest.approx(200 / 2e8, rel=1e-3)
    assert metrics.max_rel > 100  # each element against its own size: not the figure shown


def test_no_training_mode_attribution_where_both_modes_compute_the_same():
    """A model without BatchNorm or Dropout computes the same in both modes: its artifact
    matching the training-mode run says nothing about how it was exported."""
    model, inputs = _model()
    ctx = ModelRun(model, inputs, "large", Tolerances(), False, quiet_progress)
    runner = pytorch_runner(model, "cpu")
    assert attribution(ctx, runner, runner.run(inputs), unstable=False) == ""
