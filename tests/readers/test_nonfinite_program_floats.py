""".pt2 programs holding a non-finite float: JSON has no spelling for one, so torch writes
"Infinity", "-Infinity" and "NaN" as strings (a padding mask filled with -inf in attention).
Those three are read back as numbers; any other string where a float goes is still refused."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import exportcheck
from exportcheck.readers import program_schema
from exportcheck.readers.exported_program import read_exported_program


class PaddedEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1)

    def forward(self, x, padding):
        return self.encoder(x, src_key_padding_mask=padding)


@pytest.fixture(scope="module")
def padded_program(tmp_path_factory):
    torch.manual_seed(0)
    model = PaddedEncoder().eval()
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 3:] = True
    inputs = (torch.randn(2, 6, 16), padding)
    path = str(tmp_path_factory.mktemp("pt2") / "padded.pt2")
    torch.export.save(torch.export.export(model, inputs), path)
    return path


def test_an_exported_padding_mask_with_minus_infinity_is_inspected(padded_program):
    report = exportcheck.inspect(padded_program)
    assert not report.errors, report.errors
    assert report.exit_code() == 0


def test_minus_infinity_is_read_as_a_number(padded_program):
    view = read_exported_program(padded_program, frozenset({"aten::masked_fill_"}))
    (fill,) = view.nodes
    assert fill.args["value"].value == -math.inf


@pytest.mark.parametrize("spelling", ["Infinity", "-Infinity", "NaN"])
def test_torchs_spellings_of_nonfinite_floats_pass_the_check(spelling):
    program_schema.check([1.5, spelling], program_schema.ListOf(program_schema.FLOAT))
    assert math.isnan(program_schema.json_float("NaN"))
    assert program_schema.json_float("-Infinity") == -math.inf


@pytest.mark.parametrize("spelling", ["inf", "-inf", "nan", "Inf", "0.5", "infinity", ""])
def test_other_strings_as_floats_are_still_refused(spelling):
    with pytest.raises(program_schema.ShapeError, match="expected a number, got a string"):
        program_schema.check(spelling, program_schema.FLOAT)
