"""Known bad: a container whose `train()` override does not reach its children."""

from __future__ import annotations

import torch
from _common import warm_up
from torch import nn

EXPECTED = {
    "validate": {
        "submodule-left-training": ["body.norm", "body.drop"],
        "nondeterministic-eval": ["body.drop"],
        "batch-dependent-eval": ["body.norm"],
        "training-dropout": ["body.drop"],
        "training-batchnorm": ["body.norm"],
        "training-module": ["body.norm", "body.drop"],
        "runtime-nondeterminism": ["body.drop"],
        "output-mismatch": ["body.drop"],
    },
    "train_exports": {
        "onnx": ["training-dropout"],
        "onnx-legacy": ["training-batchnorm", "training-dropout"],
        "torchscript-trace": ["training-batchnorm", "training-dropout", "training-module"],
        "torchscript-script": ["training-batchnorm", "training-dropout", "training-module"],
        "exported-program": ["training-batchnorm", "training-dropout"],
    },
}


class FrozenBody(nn.Module):
    """Meant to freeze its mode, but its override only flips its own flag."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 10)
        self.norm = nn.BatchNorm1d(10)
        self.drop = nn.Dropout(0.5)

    def train(self, mode: bool = True) -> FrozenBody:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(self.norm(self.fc(x))))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = FrozenBody()
        self.head = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build():
    torch.manual_seed(0)
    model = Net()
    warm_up(model, lambda: (torch.randn(16, 10),))
    return model, (torch.randn(4, 10),)
