"""A module whose behaviour changes with the training flag (`mode-dependent-module`).

What it finds
    The built-in mode-dependent modules (the Dropout family, the BatchNorm family, InstanceNorm
    with running statistics, RNN/LSTM/GRU with dropout, and their subclasses) and custom modules
    whose `forward` reads `self.training`.

Why it is wrong
    Nothing is wrong by itself: this lists what `model.eval()` changes, so a reviewer can see
    which layers the export must have in eval mode and which custom code to read.

How to fix
    No fix is needed. If a custom module is listed, check that its eval branch is what should
    be deployed.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class ModeDependentModule(Rule):
    slug = "mode-dependent-module"
    code = "EC202"
    severity = Severity.INFO
    stage = "audit"
    summary = "Module whose behaviour depends on the training flag"
