"""Known bad: `F.dropout(x, p)` without `training=self.training` drops in eval mode too."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EXPECTED = {
    "validate": {
        "nondeterministic-eval": ["block"],
        "training-dropout": ["block"],
        "runtime-nondeterminism": ["block"],
        "output-mismatch": ["block"],
    },
    "train_exports": {
        "onnx": ["training-dropout"],
        "onnx-legacy": ["training-dropout"],
        "torchscript-trace": ["training-dropout", "training-module"],
        "torchscript-script": ["training-dropout", "training-module"],
        "exported-program": ["training-dropout"],
    },
    # Where a runtime is installed: the finding of that runtime that its problem must hold.
    "runtimes": {"openvino": "runtime-refusal", "tract": "runtime-refusal"},
}


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(torch.relu(self.fc(x)), 0.2)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


def build():
    torch.manual_seed(0)
    return Net(), (torch.randn(4, 16),)
