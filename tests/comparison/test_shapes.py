"""Dynamic dimensions beyond the batch: read from real exports, exercised at one other size each,
and a dimension the export silently specialised is a finding of its own."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from exportcheck.comparison.shapes import (
    DeclaredShapes,
    Dimension,
    onnx_shapes,
    other_size,
    program_dimensions,
    resized,
    variants,
)
from exportcheck.pipeline.validation import compare
from tests.conftest import build_sample


class Positional(nn.Module):
    """Adds a learned position table cut to the sequence length, read as a Python int: the
    tracer records the example length as a constant."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Parameter(torch.randn(64, 16))
        self.proj = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = int(x.shape[1])
        return self.proj(x + self.table[:length])


class MeanPool(nn.Module):
    """Divides by the sequence length as a Python float: a constant in the legacy export."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1) * (1.0 / float(x.shape[1]))


def legacy_export(model: nn.Module, inputs: tuple, path: str, axes: dict[int, str]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            inputs,
            path,
            dynamo=False,
            input_names=["input_0"],
            dynamic_axes={"input_0": axes},
        )
    return path


def test_onnx_dimensions_leave_the_batch_to_the_batch_check(tmp_path):
    model, inputs = build_sample("transformer")
    path = legacy_export(model, inputs, str(tmp_path / "t.onnx"), {0: "batch", 1: "seq"})
    assert onnx_shapes(path) == DeclaredShapes(True, (Dimension("seq", ((0, 1),)),))


def test_an_onnx_file_with_a_fixed_batch_declares_its_other_dimensions(tmp_path):
    model, inputs = build_sample("transformer")
    path = legacy_export(model, inputs, str(tmp_path / "t.onnx"), {1: "seq"})
    assert onnx_shapes(path) == DeclaredShapes(False, (Dimension("seq", ((0, 1),)),))


def test_program_dimensions_carry_the_range_torch_export_proved():
    model, inputs = build_sample("transformer")
    seq = torch.export.Dim("seq", min=4, max=10)
    program = torch.export.export(model.eval(), inputs, dynamic_shapes=({1: seq},))
    (dimension,) = program_dimensions(program)
    assert dimension.axes == ((0, 1),)
    assert (dimension.low, dimension.high) == (4, 10)
    # the example length is the range's top: the other size is one less
    assert other_size(10, dimension) == 9


def test_other_size_stays_in_range_and_resizing_keeps_values():
    assert other_size(5, Dimension("d", ((0, 1),), low=5, high=5)) is None
    assert other_size(5, Dimension("d", ((0, 1),), low=1, high=6)) == 6
    ids = torch.tensor([[3, 1, 4]])
    assert resized(ids, 1, 7).tolist() == [[3, 1, 4, 3, 1, 4, 3]]
    assert resized(ids, 1, 2).tolist() == [[3, 1]]


def test_one_variant_per_dimension_not_per_combination():
    inputs = (torch.zeros(2, 5, 7), torch.zeros(2, 5))
    dims = [Dimension("seq", ((0, 1), (1, 1))), Dimension("width", ((0, 2),))]
    made, left_out = variants(inputs, dims)
    assert not left_out
    assert [(v.label, [tuple(x.shape) for x in v.inputs]) for v in made] == [
        ("seq=6", [(2, 6, 7), (2, 6)]),
        ("width=8", [(2, 5, 8), (2, 5)]),
    ]


def test_transformer_with_dynamic_sequence_is_compared_at_two_lengths(tmp_path):
    model, inputs = build_sample("transformer")
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.onnx.export(
            model.eval(), inputs, dynamo=True, dynamic_shapes=(dims,), input_names=["input_0"]
        )
    path = str(tmp_path / "t.onnx")
    exported.save(path)
    report = compare(path, model, inputs, "cpu")
    runtimes = {r.runtime for r in report.runtime_runs}
    for runtime in runtimes:
        runs = {c.run for c in report.comparisons if c.runtime == runtime}
        assert {"compare", "seq=11"} <= runs, runtime
    assert all(c.passed for c in report.comparisons)
    assert {run.sizes for run in report.runtime_runs} == {("batch=4", "seq=11")}
    assert report.ok


def test_exported_program_with_dynamic_sequence_is_compared_at_two_lengths(tmp_path):
    model, inputs = build_sample("transformer")
    seq = torch.export.Dim("seq", min=2, max=32)
    program = torch.export.export(model.eval(), inputs, dynamic_shapes=({0: None, 1: seq},))
    path = str(tmp_path / "t.pt2")
    torch.export.save(program, path)
    report = compare(path, model, inputs, "cpu")
    other = [c for c in report.comparisons if c.run.endswith("=11")]
    assert other and all(c.passed for c in other)
    assert report.ok


@pytest.mark.parametrize("dynamic", [True, False])
def test_compare_runs_a_second_batch_where_an_exported_program_declares_its_batch_dynamic(
    tmp_path, dynamic
):
    torch.manual_seed(0)
    model, inputs = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval(), (torch.randn(2, 4),)
    batch = torch.export.Dim("batch", min=1, max=64) if dynamic else None
    program = torch.export.export(model, inputs, dynamic_shapes=({0: batch},))
    path = str(tmp_path / "m.pt2")
    torch.export.save(program, path)
    report = compare(path, model, inputs, "cpu")
    assert {run.sizes for run in report.runtime_runs} == ({("batch=3",)} if dynamic else {()})
    assert report.ok and report.comparisons


@pytest.mark.parametrize(
    ("model", "inputs", "happens"),
    [
        (Positional(), (torch.randn(2, 6, 16),), "fails at seq=7"),
        (MeanPool(), (torch.randn(2, 6, 16),), "differs at seq=7"),
        (*build_sample("transformer"), "fails at seq=11"),
    ],
    ids=["shape-baked", "value-baked", "legacy-transformer"],
)
def test_a_specialised_dimension_is_caught_at_the_second_size(tmp_path, model, inputs, happens):
    path = legacy_export(model, inputs, str(tmp_path / "m.onnx"), {0: "batch", 1: "seq"})
    report = compare(path, model, inputs, "cpu", runtimes=["onnxruntime"])
    found = [f for f in report.findings if f.rule == "specialised-dimension"]
    assert found, [f.message for f in report.findings]
    assert all("'seq'" in f.message and happens in f.message for f in found)
    # matched at the example length: the dimension is the problem, not a mode
    assert not [f for f in report.findings if f.rule == "output-mismatch"]
    assert not report.ok


def test_a_size_the_model_rejects_is_skipped_with_its_reason(tmp_path):
    class Fixed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[1] != 6:
                raise ValueError("expects 6 steps")
            return x * 2

    model, inputs = Fixed(), (torch.randn(2, 6, 4),)
    path = legacy_export(model, inputs, str(tmp_path / "m.onnx"), {0: "batch", 1: "seq"})
    report = compare(path, model, inputs, "cpu", runtimes=["onnxruntime"])
    skipped = [s for s in report.skipped if s.step == "dynamic dimension seq=7"]
    assert skipped and "expects 6 steps" in skipped[0].reason
    assert report.ok
