"""Small real exports for the reader tests, saved once per session."""

from __future__ import annotations

import pytest


def drop_path_cnn():
    """A CNN with stochastic depth written the way timm's DropPath and torchvision's
    StochasticDepth write it: the random mask sits under `if not self.training: return x`."""
    import torch
    from torch import nn

    class DropPath(nn.Module):
        def __init__(self, p: float) -> None:
            super().__init__()
            self.p = p

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.p == 0.0 or not self.training:
                return x
            keep = 1 - self.p
            shape = (x.shape[0],) + (1,) * (x.ndim - 1)
            mask = x.new_empty(shape).bernoulli_(keep)
            mask.div_(keep)
            return x * mask

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.drop_path = DropPath(0.2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.drop_path(self.conv(x))

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Block(), Block())
    return model, (torch.randn(2, 3, 8, 8),)


def zero_rate_dropout():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ZeroDropout(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.dropout(self.fc(x), 0.0)

    return ZeroDropout(), (torch.randn(2, 4),)


@pytest.fixture(scope="session")
def reader_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import torch

    folder = tmp_path_factory.mktemp("reader-exports")
    paths: dict[str, str] = {}
    for name, build in (("drop_path", drop_path_cnn), ("zero_dropout", zero_rate_dropout)):
        for mode in ("eval", "train"):
            model, inputs = build()
            model.train(mode == "train")
            script = folder / f"{name}.{mode}.script.pt"
            trace = folder / f"{name}.{mode}.trace.pt"
            program = folder / f"{name}.{mode}.pt2"
            torch.jit.script(model).save(str(script))
            torch.jit.trace(model, inputs, check_trace=False).save(str(trace))
            torch.export.save(torch.export.export(model, inputs), str(program))
            paths[f"{name}.{mode}.script"] = str(script)
            paths[f"{name}.{mode}.trace"] = str(trace)
            paths[f"{name}.{mode}.pt2"] = str(program)
    return paths
