"""A submodule still in training mode after `model.eval()` (`submodule-left-training`).

What it finds
    Every submodule whose `training` flag is still true after exportcheck called `.eval()` on
    the model, with its module path. The usual cause is a container whose `train()` override
    does not pass the mode on to its children.

Why it is wrong
    `model.eval()` is the one switch users trust. A child left in training mode keeps dropping
    activations and normalizing with batch statistics in every export, trace and forward,
    while the model as a whole claims to be in eval mode.

    It is an error when the module, or one below it left in training too, computes differently
    by mode (its forward, or torch's, reads `self.training`: Dropout, BatchNorm, RNN dropout,
    a custom layer); a warning, with the reason, when nothing reads the flag (FakeQuantize with
    observers off after torch's QAT recipe, a Linear).

How to fix
    In the overriding `train(self, mode=True)`, call `super().train(mode)` (which recurses into
    children) or set every child explicitly, and return `self`.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class SubmoduleLeftTraining(Rule):
    slug = "submodule-left-training"
    code = "EC201"
    severity = Severity.ERROR
    stage = "audit"
    summary = "Submodule still in training mode after model.eval()"
