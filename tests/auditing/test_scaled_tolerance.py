"""Probe tolerances scale with the magnitude of the outputs: float32 rounding on logits near
1e8 is not batch dependence, while a real batch dependence at that scale is still found."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from exportcheck.auditing.probes import run_probes
from exportcheck.numerics.metrics import default_tolerance, scaled_tolerance
from exportcheck.results.comparison import relative_text
from tests.conftest import require_model_family


class LargeLogits(nn.Module):
    """Logits near 1e8, computed through BLAS kernels that sum in another order per batch."""

    def __init__(self, batch_norm: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 1000))
        self.norm = nn.BatchNorm1d(1000, track_running_stats=False) if batch_norm else None

    def forward(self, x):
        y = self.body(x) * 3e7
        return self.norm(y) * 3e7 if self.norm is not None else y


def _batch_findings(model, inputs):
    outcome = run_probes(model.eval(), inputs, "large", "cpu")
    return [f for f in outcome.findings if f.rule == "batch-dependent-eval"]


def test_rounding_on_large_logits_is_not_batch_dependence():
    torch.manual_seed(0)
    assert not _batch_findings(LargeLogits(), (torch.randn(4, 512),))


def test_batch_statistics_on_large_logits_are_still_found():
    torch.manual_seed(0)
    (finding,) = _batch_findings(LargeLogits(batch_norm=True), (torch.randn(4, 512),))
    assert "relative" in finding.message and "magnitude" in finding.message


def test_scaled_tolerance_follows_the_largest_magnitude():
    import numpy as np

    base = default_tolerance("float32")
    big = scaled_tolerance(base, np.array([7.5e7, -3.0, 0.0], dtype=np.float32))
    assert big.atol == pytest.approx(64 * np.finfo(np.float32).eps * 7.5e7)
    assert scaled_tolerance(base, np.array([0.5], dtype=np.float32)) == base
    assert scaled_tolerance(base, np.array([3, 4], dtype=np.int64)) == base
    assert relative_text(120.0, 7.5e7) == "120 (relative 1.6e-06 to the magnitude 7.5e+07)"


@pytest.mark.model_family
def test_freshly_built_inception_v3_is_not_batch_dependent():
    """torchvision's inception_v3 with fresh weights: logits near 1e7..1e8, where the probe
    once failed on a difference of 120 (relative 1.6e-6)."""
    torchvision = require_model_family("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    inputs = (torch.randn(2, 3, 299, 299),)
    assert not _batch_findings(model, inputs)
