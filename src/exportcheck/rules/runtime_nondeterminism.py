"""The same artifact gives different outputs on two runs of one input (`runtime-nondeterminism`).

What it finds
    An artifact run twice on one input, in one session, whose outputs differ. With ONNX Runtime
    this typically shows at `ORT_DISABLE_ALL`, where a training-mode Dropout that the default
    level would have deleted is executed.

Why it is wrong
    A deployed model should be a function of its inputs; a random one cannot be tested,
    cached or reproduced.

How to fix
    See the `training-dropout` and `random-op` findings for the same artifact, and export from
    `model.eval()`.

If nothing explains it
    No random or training-mode node accounts for it, so the runtime itself varies from run to
    run (the order of a threaded reduction): widen the tolerance for that output, with a
    reason, or report it to the runtime's project.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class RuntimeNondeterminism(Rule):
    slug = "runtime-nondeterminism"
    code = "EC302"
    severity = Severity.ERROR
    stage = "compare"
    summary = "Same artifact, same input, different outputs"
