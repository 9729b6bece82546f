"""The exporters take the models people write: `forward(self, *inputs)` included."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from exportcheck.comparison.shapes import onnx_shapes, program_shapes
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
    assert program_shapes(torch.export.load(exported.path)).batch_is_dynamic
    assert read_artifact(exported.path, frozenset()).node_count > 0


def test_positional_then_varargs_forward_exports(tmp_path):
    inputs = (torch.randn(3, 1), torch.randn(3, 2), torch.randn(3, 2))
    exported = Exporter(Prefixed().eval(), inputs).export(
        "exported-program", str(tmp_path / "p.pt2")
    )
    assert program_shapes(torch.export.load(exported.path)).batch_is_dynamic


@pytest.mark.parametrize(("batch", "dynamic"), [(2, True), (1, False)])
def test_onnx_exports_declare_a_dynamic_batch_unless_torch_export_specialised_it(
    tmp_path, batch, dynamic
):
    # torch.export specializes a batch of one (Dim.AUTO): the file then declares a fixed size.
    # The legacy exporter is given the batch axis, and falls back to none where that fails.
    inputs = (torch.randn(batch, 4), torch.randn(batch, 4))
    exporter = Exporter(Wrapper().eval(), inputs)
    dynamo = exporter.export("onnx", str(tmp_path / "w.onnx"))
    legacy = exporter.export("onnx-legacy", str(tmp_path / "w.legacy.onnx"))
    assert dynamo.dynamic_batch is None and legacy.dynamic_batch is None
    assert onnx_shapes(dynamo.path).batch_is_dynamic is dynamic
    assert onnx_shapes(legacy.path).batch_is_dynamic
