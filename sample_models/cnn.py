"""A small image classifier: Conv-BatchNorm-ReLU blocks, global pooling, Dropout, Linear. Clean."""

from __future__ import annotations

import torch
from _common import warm_up
from torch import nn

EXPECTED = {
    "validate": {},
    "train_exports": {
        "onnx": ["training-dropout"],
        "onnx-legacy": ["training-batchnorm", "training-dropout"],
        "torchscript-trace": ["training-batchnorm", "training-dropout", "training-module"],
        "torchscript-script": ["training-batchnorm", "training-dropout", "training-module"],
        "exported-program": ["training-batchnorm", "training-dropout"],
    },
}


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, stride=2),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))


def build():
    torch.manual_seed(0)
    model = SmallCNN()
    warm_up(model, lambda: (torch.randn(8, 3, 16, 16),))
    return model, (torch.randn(4, 3, 16, 16),)
