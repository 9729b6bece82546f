"""An importable `package.module:callable` target for the tests."""

import torch


def build():
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()), (torch.randn(1, 4),)
