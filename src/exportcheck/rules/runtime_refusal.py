"""A runtime the artifact may ship to will not load, compile or run it (`runtime-refusal`).

What it finds
    An artifact that OpenVINO, tract or another optional runtime refuses, with the runtime's
    own reason on one line: OpenVINO's "Training mode is not supported for Dropout op", tract's
    "Dropout in training mode with a non-zero ratio is not supported". A runtime whose own
    process dies on the artifact (OpenVINO and tract run in one of their own) crashes on it,
    and the finding gives the signal and the process's last words. When a mode problem of
    the same model explains the refusal, the finding is evidence under that problem and says
    which one ("a consequence of EC101 at head.py:32"). Where the runtime names the node it
    refuses, the finding is placed at that node: its module and, for a dynamo export, the line
    of Python that made it. A refused batch norm that only standardizes a weight (timm's
    `StdConv2d`) is said to be one, with its own fix: fold the artifact's constants.

Why it is wrong
    The same training-mode node runs randomly on one runtime and stops another from loading
    the model at all; the load error names an ONNX node, not the line of Python that made it.

How to fix
    Fix the problem it is a consequence of (export from `model.eval()`).

If nothing explains it
    The refusal is the runtime's own limit, not a mode problem: write the code at the place it
    names with operators the runtime supports, export for that runtime another way (another
    opset, constants folded), or report the operator to the runtime's project.
"""

from __future__ import annotations

from exportcheck.results.findings import Severity
from exportcheck.rules.base import Rule


class RuntimeRefusal(Rule):
    slug = "runtime-refusal"
    code = "EC304"
    severity = Severity.WARNING
    stage = "compare"
    summary = "A runtime refuses to load, compile or run the artifact"
