"""NaN or Inf in a reference or artifact output (`nonfinite-output`).

What it finds
    Non-finite values in the eval-mode reference or in an artifact output on the example
    inputs, with their count.

Why it is wrong
    A NaN compares unequal to everything, so a comparison cannot prove anything about that
    output; and a model that produces NaN on ordinary inputs is broken (often an eval-mode
    division by a zero running variance, or an overflow in half precision).

How to fix
    Check the example inputs, the BatchNorm running variance and epsilon, and the dtype.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class NonfiniteOutput(Rule):
    slug = "nonfinite-output"
    code = "EC303"
    severity = Severity.ERROR
    stage = "compare"
    summary = "NaN or Inf in an output"
