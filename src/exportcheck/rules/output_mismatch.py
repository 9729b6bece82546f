"""A deployed artifact whose outputs differ from the eval-mode PyTorch model (`output-mismatch`).

What it finds
    An artifact (ONNX on ONNX Runtime at a given optimization level, TorchScript, an
    ExportedProgram) whose outputs, on the same inputs, differ from the eval-mode PyTorch
    reference beyond tolerance, or whose output count, shapes or dtypes differ. When the
    artifact instead matches the model in training mode (batch statistics on, dropout off),
    the finding says it was exported with BatchNorm in training mode.

Why it is wrong
    The artifact is what runs in production; the eval-mode model is what was validated. A
    mismatch means the deployment computes something nobody tested.

How to fix
    Export from `model.eval()`; read the attribution in the message. If the difference is
    numerical noise of the runtime, widen `--rtol/--atol` for that output, with a reason.

If nothing explains it
    No mode problem accounts for the difference: if it is numerical noise of the runtime,
    widen `--rtol/--atol` for that output, with a reason; otherwise the exporter or the
    runtime computes the operation differently, which is worth reporting with the artifact.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class OutputMismatch(Rule):
    slug = "output-mismatch"
    code = "EC301"
    severity = Severity.ERROR
    stage = "compare"
    summary = "Deployed artifact does not compute what the eval-mode model computes"
