"""training-batchnorm: batch statistics on activations are caught in every format; weight
standardization and the per-sample decomposition are not batch statistics."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from exportcheck.export.exporters import FORMATS, SUFFIXES, Exporter
from exportcheck.pipeline.inspection import inspect


class StdConv2d(nn.Conv2d):
    """timm's StdConv2d forward: weights standardized by batch norm in training mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,
            None,
            training=True,
            momentum=0.0,
            eps=1e-6,
        ).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


class PerSampleNorm(nn.Module):
    """Instance norm written as the exporters decompose it: one sample of N*C channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Batch 2 x 4 channels as one sample of 8 channels, 6 x 6 each.
        y = self.conv(x).reshape(1, 8, 6, 6)
        return F.batch_norm(y, None, None, training=True).reshape(2, 4, 6, 6)


def _models() -> dict[str, nn.Module]:
    return {
        "weight-standardization": nn.Sequential(StdConv2d(3, 4, 3), nn.ReLU()).eval(),
        "per-sample": PerSampleNorm().eval(),
        "running-stats-train": nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train(),
        "no-running-stats": nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False)
        ).eval(),
    }


# What each format shows of the case: the dynamo exporter decomposes batch norm into plain
# arithmetic (nothing to match), and scripting PerSampleNorm's shape unpacking is not needed
# to show the decomposition (trace and the others carry it).
EXPECTED_HITS = {
    "weight-standardization": dict.fromkeys(FORMATS, 0),
    "per-sample": {"onnx": 0, "onnx-legacy": 0, "exported-program": 0},
    "running-stats-train": {
        "onnx-legacy": 1,
        "torchscript-trace": 1,
        "torchscript-script": 1,
        "exported-program": 1,
    },
    "no-running-stats": {
        "onnx-legacy": 1,
        "torchscript-trace": 1,
        "torchscript-script": 1,
        "exported-program": 1,
    },
}


@pytest.fixture(scope="session")
def batchnorm_artifacts(tmp_path_factory) -> dict[tuple[str, str], str]:
    folder = tmp_path_factory.mktemp("batchnorm")
    inputs = (torch.randn(2, 3, 8, 8),)
    paths = {}
    torch.manual_seed(0)
    for name, model in _models().items():
        for fmt in EXPECTED_HITS[name]:
            path = str(folder / f"{name}{SUFFIXES[fmt]}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Exporter(model, inputs).export(fmt, path)
            paths[name, fmt] = path
    return paths


@pytest.mark.parametrize(
    ("case", "fmt"), [(c, f) for c, by_format in EXPECTED_HITS.items() for f in by_format]
)
def test_training_batchnorm_only_on_batch_statistics(batchnorm_artifacts, case, fmt):
    report = inspect(batchnorm_artifacts[case, fmt])
    hits = [f for f in report.findings if f.rule == "training-batchnorm"]
    assert len(hits) == EXPECTED_HITS[case][fmt], [f.message for f in hits]
