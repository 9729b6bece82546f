"""A model whose eval mode is itself random (`F.dropout` at its default `training=True`), checked
against an artifact exported from it correctly: the mismatch is the model's problem, which
`compare` and `fix --against` say with its place and fix, not a lowering of the export's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import exportcheck


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.ignores_mode = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        training = True if self.ignores_mode else self.training
        return F.dropout(torch.relu(self.fc(x)), 0.2, training=training)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


def models() -> tuple[Net, Net, tuple[torch.Tensor]]:
    """The model that ignores its mode, and a copy with the same weights that respects it."""
    torch.manual_seed(0)
    random = Net().eval()
    correct = Net().eval()
    correct.load_state_dict(random.state_dict())
    correct.block.ignores_mode = False
    return random, correct, (torch.randn(4, 16),)


def test_compare_blames_the_models_own_randomness_not_the_export(tmp_path):
    random, correct, inputs = models()
    path = str(tmp_path / "correct.onnx")
    torch.onnx.export(correct, inputs, path, dynamo=False)
    report = exportcheck.compare(path, random, inputs, devices="cpu")
    assert report.exit_code() == 1
    (problem,) = report.failing_problems()
    assert (problem.rule, problem.module) == ("nondeterministic-eval", "block")
    assert "output-mismatch" in {f.rule for f in problem.evidence}
    assert "first-divergence" not in {f.rule for f in report.findings}
    # The copy that respects its mode is deterministic: nothing of the kind is reported.
    clean = exportcheck.compare(path, correct, inputs, devices="cpu")
    assert clean.exit_code() == 0
    assert "nondeterministic-eval" not in {f.rule for f in clean.findings}


def test_a_repair_proof_says_the_model_is_random_and_where(tmp_path):
    random, correct, inputs = models()
    source = str(tmp_path / "train.onnx")
    torch.onnx.export(
        correct.train(),
        inputs,
        source,
        dynamo=False,
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
    )
    result = exportcheck.fix(
        source, str(tmp_path / "fixed.onnx"), random, example_inputs=inputs, devices="cpu"
    )
    step = next(s for s in result.proof if s.check == "matches the eval-mode model")
    assert not step.passed and not result.proof_holds
    assert step.detail.startswith("the eval-mode model is itself random")
    assert "`block`" in step.detail and "training=self.training" in step.detail
    fixed = exportcheck.fix(
        source, str(tmp_path / "fixed-2.onnx"), correct.eval(), example_inputs=inputs
    )
    assert fixed.proof_holds, [(s.check, s.detail) for s in fixed.proof]
