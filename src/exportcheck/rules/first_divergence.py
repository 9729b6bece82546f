"""Where an artifact first computes something else than the eval-mode model (`first-divergence`).

What it finds
    For an artifact whose outputs differ from the eval-mode model (and that no mode finding
    explains, or with `--localize`), the first value in execution order that diverges beyond
    tolerance while the values it is computed from still agree: the torch module, its source
    line, the artifact node(s) and operator types, and how far its inputs and its output are
    from the model's. Values after it that diverge only because it did are propagated error.

Why it is wrong
    The exporter (an operator's lowering, a custom symbolic or translation, a dtype rule) or the
    runtime computes this operation differently from eager PyTorch, so the artifact computes
    something nobody validated, although the model was exported in eval mode.

How to fix
    Change how the named operation is exported (a corrected symbolic or translation, another
    opset, another operator in the model's code at the named line), then run the comparison
    again.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class FirstDivergence(Rule):
    slug = "first-divergence"
    code = "EC307"
    severity = Severity.ERROR
    stage = "localize"
    summary = "Artifact first computes something else at this operation"
