"""The eval-mode model gives different outputs on the same input (`nondeterministic-eval`).

What it finds
    Two forwards of the eval-mode PyTorch model on the same input, under different RNG seeds,
    that differ beyond tolerance; forward hooks name the first module whose output differed.
    `validate` and `audit` probe every model; `compare` probes the model it compares an
    artifact against, so that a mismatch the model's own randomness causes is reported here,
    not as a fault of the export.

Why it is wrong
    An eval-mode model should be a function. Randomness left in eval mode is almost always
    `F.dropout(x, p)` without `training=self.training` (the functional default is True) or a
    custom layer that samples noise without checking `self.training`. Every export of it
    carries the randomness too.

How to fix
    Gate the random path on `self.training` in the named module, e.g.
    `F.dropout(x, p, training=self.training)`.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class NondeterministicEval(Rule):
    slug = "nondeterministic-eval"
    code = "EC211"
    severity = Severity.ERROR
    stage = "probe"
    summary = "Eval-mode model gives different outputs for the same input"
