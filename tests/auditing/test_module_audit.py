"""The module audit points at the code responsible: the train() override that stops short."""

from __future__ import annotations

import inspect

from torch import nn

from exportcheck.auditing.module_audit import audit_findings
from exportcheck.targets.python_targets import build_target


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


def test_a_torch_layer_is_placed_where_the_users_code_builds_it(tmp_path):
    """An audit finding about nn.BatchNorm2d points at the model's `self.features = ...` line,
    never into torch's batchnorm.py (the target is imported as a file, as the CLI does)."""
    target = tmp_path / "net.py"
    target.write_text(
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))\n"
        "        self.drop = nn.Dropout(0.1)\n"
        "\n"
        "    def forward(self, x):\n"
        "        return self.drop(self.features(x))\n"
        "\n"
        "\n"
        "def build():\n"
        "    return Net().eval(), (torch.randn(1, 3, 8, 8),)\n"
    )
    built = build_target(f"{target}:build")
    places = {
        f.location.module: (f.location.source_file, f.location.source_line)
        for f in audit_findings(built.model, "net")
    }
    assert places == {"features.1": (str(target), 8), "drop": (str(target), 9)}
