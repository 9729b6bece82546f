"""Outputs the model leaves undefined: nn.TransformerEncoder with a padding mask takes the
nested-tensor fast path under inference mode and leaves padded positions at zero, while an
export computes them. That is the reference's ambiguity, reported as info with the reason."""

from __future__ import annotations

import torch
from torch import nn

import exportcheck
from tests.localization.cases import export_dynamo


class PaddedEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(32, 5)

    def forward(self, x, padding):
        return self.head(self.encoder(x, src_key_padding_mask=padding))


def test_padded_positions_are_the_references_ambiguity_not_a_mismatch(tmp_path):
    torch.manual_seed(0)
    model = PaddedEncoder().eval()
    padding = torch.zeros(2, 10, dtype=torch.bool)
    padding[0, 7:] = True
    padding[1, 4:] = True
    inputs = (torch.randn(2, 10, 32), padding)
    path = str(tmp_path / "padded.onnx")
    export_dynamo(model, inputs, path)
    report = exportcheck.compare(path, model, inputs, devices="cpu")
    assert report.exit_code() == 0
    mismatches = [f for f in report.findings if f.rule == "output-mismatch"]
    assert mismatches and all(f.severity.label == "info" for f in mismatches)
    message = mismatches[0].message
    assert "autograd on and off" in message and "agrees with the model everywhere else" in message
    assert "eval()" not in mismatches[0].detail["fix"]
