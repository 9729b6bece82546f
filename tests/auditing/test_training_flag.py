"""The training flag matters only where something reads it: a module left in training is an
error when it (or one below it) computes differently by mode, a warning with the reason when
nothing reads the flag. Decided from code, on torch's own QAT recipe and on plain layers."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import exportcheck
from exportcheck.auditing.module_audit import audit_findings


class KeepsChildrenTraining(nn.Module):
    """A container whose train() override does not reach its children."""

    def __init__(self, child: nn.Module) -> None:
        super().__init__()
        self.child = child

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def forward(self, x):
        return self.child(x)


class NoisyInTraining(nn.Module):
    def forward(self, x):
        return x * 2 if self.training else x


def _left(model: nn.Module):
    return [f for f in audit_findings(model) if f.rule == "submodule-left-training"]


def test_a_layer_that_reads_the_flag_is_an_error():
    model = KeepsChildrenTraining(NoisyInTraining()).train()
    (finding,) = _left(model)
    assert finding.severity.label == "error"
    assert "reads self.training" in finding.message


def test_dropout_left_training_is_an_error():
    (finding,) = _left(KeepsChildrenTraining(nn.Dropout(0.3)).train())
    assert finding.severity.label == "error" and "dropout" in finding.message


def test_a_linear_left_training_is_a_warning_with_the_reason():
    (finding,) = _left(KeepsChildrenTraining(nn.Linear(4, 4)).train())
    assert finding.severity.label == "warning"
    assert "nothing in it reads the flag" in finding.message and "Linear" in finding.message


def qat_conv_bn() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """torch's documented QAT recipe: fuse, prepare_qat, train, disable_observer,
    freeze_bn_stats, eval(). `_ConvBnNd.train()` skips its children, so the fake quantizers
    stay training=True."""
    import torch.ao.quantization as tq
    from torch.ao.nn.intrinsic.qat import freeze_bn_stats

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.quant = tq.QuantStub()
            self.conv = nn.Conv2d(3, 8, 3)
            self.bn = nn.BatchNorm2d(8)
            self.relu = nn.ReLU()
            self.dequant = tq.DeQuantStub()

        def forward(self, x):
            return self.dequant(self.relu(self.bn(self.conv(self.quant(x)))))

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tq.fuse_modules_qat(Net().train(), [["conv", "bn", "relu"]])
        model.qconfig = tq.get_default_qat_qconfig("fbgemm")
        tq.prepare_qat(model, inplace=True)
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(4, 3, 8, 8))
        model.apply(tq.disable_observer)
        model.apply(freeze_bn_stats)
        model.eval()
    return model, (torch.randn(2, 3, 8, 8),)


def test_qat_recipe_fake_quantizers_left_training_are_warnings():
    model, _ = qat_conv_bn()
    left = _left(model)
    assert {f.location.module for f in left} == {
        "conv.weight_fake_quant",
        "conv.activation_post_process",
    }
    assert all(f.severity.label == "warning" for f in left)


@pytest.mark.parametrize("fmt", ["torchscript-trace", "exported-program"])
def test_qat_recipe_validates_without_an_error(fmt):
    """Deterministic, and every artifact reproduces it: no error, in the audit or the graph."""
    model, inputs = qat_conv_bn()
    report = exportcheck.validate(model, inputs, formats=[fmt], devices="cpu", probes=True)
    errors = [f for f in report.findings if f.severity.label == "error"]
    assert not errors, [f"{f.rule}: {f.message}" for f in errors]
    assert report.exit_code() == 0
    flags = [f for f in report.findings if f.rule == "training-module"]
    assert all(f.severity.label == "warning" for f in flags)
