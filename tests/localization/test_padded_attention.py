"""A padded nn.TransformerEncoder (batch_first, src_key_padding_mask, eval mode) computes the same
in every artifact: localization must blame nothing in it.

Two pairings once blamed self-attention: the dynamo exporter's program numbers its nodes apart
from the model's own program (`view_10` reshapes the values in one, the keys in the other), and
a TorchScript layer replayed without the padding mask its encoder passes by keyword."""

from __future__ import annotations

import torch
from torch import nn

import exportcheck
from exportcheck.auditing.probes import run_probes
from exportcheck.localization import localize
from tests.localization.cases import export_dynamo


class PaddedEncoder(nn.Module):
    def __init__(self, nested: bool = True) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=nested)
        self.head = nn.Linear(32, 5)

    def forward(self, x, padding):
        return self.head(self.encoder(x, src_key_padding_mask=padding))


def _case(nested: bool = True):
    torch.manual_seed(0)
    model = PaddedEncoder(nested).eval()
    padding = torch.zeros(2, 10, dtype=torch.bool)
    padding[0, 7:] = True
    padding[1, 4:] = True
    return model, (torch.randn(2, 10, 32), padding)


def test_values_numbered_alike_but_computed_apart_are_not_paired(tmp_path):
    model, inputs = _case()
    path = str(tmp_path / "padded.onnx")
    export_dynamo(model, inputs, path)
    trace = localize(model, path, "onnx", inputs, "onnx")
    assert trace.root is None, trace.root
    assert trace.count("root-cause") == 0
    assert trace.matched > 0
    skipped = trace.to_dict()["unmatched"]
    assert skipped.get("an FX node of that name computes something else (decomposed differently)")


def test_a_scripted_layer_is_replayed_with_its_keyword_arguments(tmp_path):
    model, inputs = _case(nested=False)
    path = str(tmp_path / "padded.script.pt")
    torch.jit.save(torch.jit.script(model), path)
    report = exportcheck.compare(path, model, inputs, devices="cpu", localize=True)
    assert report.exit_code() == 0
    (note,) = [f for f in report.findings if f.rule == "first-divergence"]
    assert "no single operation diverges" in note.message, note.message
    trace = note.detail["trace"]
    assert trace["matched"] == trace["candidates"]


class PaddedBatchNorm(PaddedEncoder):
    """The padded encoder with a real batch dependence after it: the probe walks the layers'
    recorded outputs, nested tensors among them, to find where it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(5, track_running_stats=False)

    def forward(self, x, padding):
        return self.norm(super().forward(x, padding).mean(1))


def test_the_padded_encoder_is_not_batch_dependent():
    """The batch probe's companion samples copy the padding mask's rows: random bits are no
    padding mask (not left-aligned) and sent the encoder off its fast path in the larger batch
    only, where the positions it leaves undefined took other values."""
    model, inputs = _case()
    outcome = run_probes(model, inputs, "padded", "cpu")
    assert not [f for f in outcome.findings if f.rule == "batch-dependent-eval"]


def test_a_batch_dependence_after_nested_layers_is_found_without_a_crash():
    _, inputs = _case()
    torch.manual_seed(0)
    model = PaddedBatchNorm().eval()
    outcome = run_probes(model, inputs, "padded", "cpu")
    (finding,) = [f for f in outcome.findings if f.rule == "batch-dependent-eval"]
    assert finding.location.module == "norm"
