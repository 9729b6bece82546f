"""A custom layer whose forward reads `self.training`: x*2 in training, x+1 in eval. Clean.

Graph rules cannot see this mode switch (there is no Dropout or BatchNorm); only comparing a
train-mode export against the eval-mode model shows it.
"""

from __future__ import annotations

import torch
from torch import nn

EXPECTED = {
    "validate": {},
    "train_exports": {
        "torchscript-trace": ["training-module"],
        "torchscript-script": ["training-module"],
    },
}


class ModeScale(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return x * 2
        return x + 1


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 6)
        self.mode_scale = ModeScale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mode_scale(self.proj(x))


def build():
    torch.manual_seed(0)
    return Net(), (torch.randn(4, 6),)
