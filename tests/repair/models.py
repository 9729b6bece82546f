"""Small models the repair tests export for real: weight standardization (timm's StdConv2d
without timm), instance norm, a Dropout inside torch.cond."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class StdConv2d(nn.Conv2d):
    """timm's StdConv2d: the weight normalized by `F.batch_norm(..., training=True)`, batch
    statistics of the weight on purpose in every mode."""

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


class StdConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = StdConv2d(3, 8, 3, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.conv = StdConv2d(8, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.relu(self.norm(self.stem(x))))


class InstanceNormNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.InstanceNorm2d(8, affine=True)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.conv(x))))


class ConvBnDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(self.bn(self.conv(x))))


class DropoutInCond(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda v: self.drop(v) * 2, lambda v: self.drop(v) - 1, (x,))


def built(cls: type[nn.Module], training: bool) -> nn.Module:
    torch.manual_seed(0)
    model = cls()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):  # stored statistics unlike a batch's own
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.train(training)


def image(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def batchnorm_statistics(channels: int = 4) -> dict[str, np.ndarray]:
    """A batch norm's stored scale, bias, running mean and running variance, as float32."""
    rng = np.random.default_rng(0)
    values = {
        "scale": rng.uniform(0.5, 1.5, channels),
        "bias": rng.uniform(-1, 1, channels),
        "mean": rng.uniform(-1, 1, channels),
        "var": rng.uniform(0.5, 2, channels),
    }
    return {name: value.astype(np.float32) for name, value in values.items()}
