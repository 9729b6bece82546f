"""The module audit points at the code responsible: the train() override that stops short."""

from __future__ import annotations

import inspect

from torch import nn

from exportcheck.auditing.module_audit import audit_findings


class Frozen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.drop = nn.Dropout(0.5)

    def train(self, mode: bool = True) -> Frozen:
        self.training = mode  # never reaches the children
        return self

    def forward(self, x):
        return self.drop(self.fc(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = Frozen()

    def forward(self, x):
        return self.body(x)


def test_a_submodule_left_training_points_at_the_override_that_stops_short():
    model = Net().train()
    findings = [f for f in audit_findings(model) if f.rule == "submodule-left-training"]
    _, line = inspect.getsourcelines(Frozen.train)
    assert sorted(f.location.module for f in findings) == ["body.drop", "body.fc"]
    for finding in findings:
        assert finding.location.source_file == __file__
        assert finding.location.source_line == line
        assert "Frozen.train" in finding.message
    # The audit gives the model back with its own modes.
    assert model.body.fc.training and model.training


def test_a_stock_module_points_at_its_own_class_for_other_findings():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1))
    findings = [f for f in audit_findings(model) if f.rule == "mode-dependent-module"]
    assert findings and all(f.location.source_file.endswith("dropout.py") for f in findings)
