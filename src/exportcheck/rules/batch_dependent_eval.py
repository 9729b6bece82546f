"""A sample's eval-mode output depends on the other samples in its batch (`batch-dependent-eval`).

What it finds
    A sample run alone and inside a batch with different companions giving outputs that differ
    beyond tolerance (measured noise: about 1e-7 on CPU, 1.4e-6 on CUDA; batch statistics
    differ around 1e-1); forward hooks name the first module whose output changed.

Why it is wrong
    At inference a request must not change because of who else is in the batch. The cause is
    almost always BatchNorm normalizing with batch statistics: built with
    `track_running_stats=False`, left in training mode, or a custom layer reducing over the
    batch dimension.

How to fix
    Give BatchNorm running statistics (`track_running_stats=True`, then recompute them), use a
    per-sample normalization (LayerNorm, GroupNorm), or make the custom layer reduce over
    per-sample dimensions only.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class BatchDependentEval(Rule):
    slug = "batch-dependent-eval"
    code = "EC212"
    severity = Severity.ERROR
    stage = "probe"
    summary = "A sample's eval-mode output depends on the rest of its batch"
