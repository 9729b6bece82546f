"""Exports that fold BatchNorm into the Conv before it, paired soundly.

Legacy: node names spell nested modules by their full path (`/stages/stages.0/stages.0.0/conv1/
Conv` is `stages.0.0.conv1`); every module's output is paired, except where the exporter folded
the next module into it, which is counted as such rather than blamed.
Dynamo: the optimizer's fused Conv keeps BatchNorm's record and the name of its result
(`getitem`), and the conv2d it read has no record left."""

from __future__ import annotations

import torch
from torch import nn

from exportcheck.localization import localize
from exportcheck.localization.onnx_values import FOLDED
from tests.localization.cases import export_dynamo, export_legacy


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return x + self.drop(self.relu(self.bn1(self.conv1(x))))


class Staged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.stages = nn.Sequential(nn.Sequential(Block(8), Block(8)), nn.Sequential(Block(8)))
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)).mean((2, 3)))


def _warmed() -> nn.Module:
    torch.manual_seed(0)
    model = Staged()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 8, 8) * 3 + 1)
    return model.eval()


def test_nested_modules_are_paired_and_folded_ones_counted(tmp_path):
    model = _warmed()
    inputs = (torch.randn(2, 3, 8, 8),)
    path = str(tmp_path / "staged.legacy.onnx")
    export_legacy(model, inputs, path)
    trace = localize(model, path, "onnx", inputs, "onnx-legacy")
    assert trace.root is None, trace.root
    paired = {p.place.module for p in trace.points}
    assert {"stages.0.0.relu", "stages.0.1", "stages.1.0", "head"} <= paired
    # Each Conv computes Conv+BatchNorm in the graph: never paired with the Conv alone.
    assert not paired & {"stem.0", "stages.0.0.conv1", "stages.1.0.conv1"}
    assert trace.unmatched[FOLDED] >= 4
    assert trace.matched + sum(trace.unmatched.values()) == trace.candidates


def test_a_dynamo_conv_with_batchnorm_folded_in_is_paired_as_the_batchnorm(tmp_path):
    model = _warmed()
    inputs = (torch.randn(2, 3, 8, 8),)
    path = str(tmp_path / "staged.onnx")
    export_dynamo(model, inputs, path)
    trace = localize(model, path, "onnx", inputs, "onnx")
    assert trace.root is None, trace.root
    assert trace.matched == trace.candidates, trace.unmatched
    assert "getitem" in {p.value for p in trace.points}
