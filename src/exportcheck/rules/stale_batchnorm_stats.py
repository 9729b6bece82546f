"""BatchNorm whose running statistics were never updated (`stale-batchnorm-stats`).

What it finds
    A BatchNorm layer with `num_batches_tracked == 0`, running mean all zeros and running
    variance all ones: the initial values, as if the model never saw data in training mode.

Why it is wrong
    In eval mode BatchNorm normalizes with its running statistics. Never updated, they leave
    activations unnormalized, so the eval-mode model computes something the training run never
    saw. Typical causes: a model trained with the layer frozen or in eval mode, or weights
    loaded without the buffers.

How to fix
    Load the buffers with the weights (`load_state_dict` with `strict=True`), or recompute the
    statistics on training data in train mode under `torch.no_grad()` before exporting.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class StaleBatchNormStats(Rule):
    slug = "stale-batchnorm-stats"
    code = "EC203"
    severity = Severity.WARNING
    stage = "audit"
    summary = "BatchNorm running statistics were never updated"
