"""Helpers the sample models share: deterministic weights and warmed-up BatchNorm statistics."""

from __future__ import annotations

import torch
from torch import nn


def warm_up(model: nn.Module, make_batch, steps: int = 4) -> nn.Module:
    """Runs a few train-mode forwards so BatchNorm running statistics look trained."""
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(*make_batch())
    return model
