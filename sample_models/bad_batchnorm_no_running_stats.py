"""Known bad: BatchNorm with `track_running_stats=False` uses batch statistics forever."""

from __future__ import annotations

import torch
from torch import nn

EXPECTED = {
    "validate": {
        "batch-dependent-eval": ["bn"],
        "training-batchnorm": ["bn"],
    },
    "train_exports": {
        "onnx": [],
        "onnx-legacy": ["training-batchnorm"],
        "torchscript-trace": ["training-batchnorm", "training-module"],
        "torchscript-script": ["training-batchnorm", "training-module"],
        "exported-program": ["training-batchnorm"],
    },
    # Where a runtime is installed: the finding of that runtime that its problem must hold.
    "runtimes": {"openvino": "runtime-batch-statistics"},
}


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.bn = nn.BatchNorm1d(8, track_running_stats=False)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.fc(x))))


def build():
    torch.manual_seed(0)
    return Net(), (torch.randn(4, 8),)
