"""The exporters take the models people write: `forward(self, *inputs)` included."""

from __future__ import annotations

import torch
from torch import nn

from exportcheck.export.exporters import Exporter
from exportcheck.readers import read_artifact


class Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fc(inputs[0] + inputs[1])


class Prefixed(nn.Module):
    def forward(self, scale: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return scale * sum(rest)


def test_varargs_forward_exports_with_a_dynamic_batch(tmp_path):
    inputs = (torch.randn(2, 4), torch.randn(2, 4))
    exported = Exporter(Wrapper().eval(), inputs).export(
        "exported-program", str(tmp_path / "w.pt2")
    )
    assert exported.dynamic_batch
    assert read_artifact(exported.path, frozenset()).node_count > 0


def test_positional_then_varargs_forward_exports(tmp_path):
    inputs = (torch.randn(3, 1), torch.randn(3, 2), torch.randn(3, 2))
    exported = Exporter(Prefixed().eval(), inputs).export(
        "exported-program", str(tmp_path / "p.pt2")
    )
    assert exported.dynamic_batch
