"""A sample's output changes with the rest of its batch (`runtime-batch-statistics`).

What it finds
    An artifact, on one runtime, whose outputs for the example samples change when another
    sample joins the batch: it normalizes with the batch's own statistics. Measured on every
    runtime from the batch check's two runs, so no extra run is made.

Why it is wrong
    In deployment a sample's prediction then depends on what else was batched with it. When
    the eval-mode model does the same (BatchNorm without running statistics), the artifact
    matches it and only this finding shows what each runtime computes.

How to fix
    See the `training-batchnorm` and `batch-dependent-eval` findings of the same model: keep
    running statistics and export from `model.eval()`.

If nothing explains it
    Run with the probes on (`--probes`, the default) to learn whether the eval-mode model
    mixes samples too; if it does not, look in the artifact for a normalization or reduction
    over the batch axis, and report it to the runtime's project if there is none.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class RuntimeBatchStatistics(Rule):
    slug = "runtime-batch-statistics"
    code = "EC306"
    severity = Severity.WARNING
    stage = "compare"
    summary = "The artifact normalizes with the statistics of its batch"
