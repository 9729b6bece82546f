"""A transformer encoder block stack (batch-first, with dropout inside attention and FFN). Clean."""

from __future__ import annotations

import torch
from torch import nn

EXPECTED = {
    "validate": {},
    "train_exports": {
        "onnx": ["training-dropout"],
        "onnx-legacy": ["training-dropout"],
        "torchscript-trace": ["training-dropout", "training-module"],
        "torchscript-script": ["training-dropout", "training-module"],
        "exported-program": ["training-dropout"],
    },
}


class Encoder(nn.Module):
    def __init__(self, d_model: int = 32, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=64, dropout=0.1, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.encoder(x))


def build():
    torch.manual_seed(0)
    return Encoder(), (torch.randn(3, 10, 32),)
