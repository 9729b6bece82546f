"""A two-layer LSTM tagger with dropout between layers. Clean."""

from __future__ import annotations

import torch
from torch import nn

EXPECTED = {
    "validate": {},
    "train_exports": {
        "onnx": ["training-dropout"],
        "onnx-legacy": "export-fails",
        "torchscript-trace": ["training-dropout", "training-module"],
        "torchscript-script": ["training-dropout", "training-module"],
        "exported-program": ["training-dropout"],
    },
}


class Tagger(nn.Module):
    def __init__(self, features: int = 12, hidden: int = 16, tags: int = 5) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, dropout=0.25, batch_first=True)
        self.head = nn.Linear(hidden, tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


def build():
    torch.manual_seed(0)
    return Tagger(), (torch.randn(3, 7, 12),)
