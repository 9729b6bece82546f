"""A Dropout whose mode is decided at run time (`dynamic-dropout-mode`).

What it finds
    An ONNX `Dropout` whose `training_mode` input is a graph input or a computed value, and a
    TorchScript dropout whose `train` argument could not be folded to a constant.

Why it is wrong
    Whoever runs the graph can switch dropout on, and many runtimes and serving wrappers feed
    every graph input they find. The deployed behaviour then depends on the caller rather than
    on the export.

How to fix
    Export from `model.eval()` so the mode is a constant false and the node folds away, or
    make sure every caller feeds `training_mode=False`.
"""

from __future__ import annotations

from collections.abc import Iterator

from exportcheck.readers.view import NodeView
from exportcheck.results.findings import Severity
from exportcheck.rules.base import Hit, Rule
from exportcheck.rules.training_dropout import TORCH_DROPOUTS


class DynamicDropoutMode(Rule):
    slug = "dynamic-dropout-mode"
    code = "EC105"
    severity = Severity.WARNING
    summary = "Dropout mode is not a constant: callers can switch dropout on"
    ops = frozenset({"Dropout"}) | TORCH_DROPOUTS

    def check_node(self, node: NodeView) -> Iterator[Hit]:
        name = "training_mode" if node.op == "Dropout" else "train"
        mode = node.arg(name)
        if mode is not None and not mode.constant:
            yield Hit(f"{node.op} mode comes from {mode.source}, not a constant", node)
