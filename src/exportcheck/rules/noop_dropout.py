"""A Dropout left in the graph that does nothing (`noop-dropout`).

What it finds
    An ONNX `Dropout` whose `training_mode` is absent or constant false, or whose ratio is a
    constant zero; a TorchScript or torch.export dropout (`aten::dropout` and its family) whose
    `p` is a constant zero, in either mode (`F.dropout(x, 0.0)`, a rate configured as 0).

Why it is wrong
    It is harmless in ONNX Runtime, which removes it, but it means the exporter kept a
    training-time node; runtimes without that optimization pay for a copy, and a later edit of
    the graph can turn it on.

How to fix
    Nothing is required. Export from `model.eval()` with constant folding on (the default) to
    drop it, or run an optimizer such as `onnxscript.optimizer`.
"""

from __future__ import annotations

from collections.abc import Iterator

from exportcheck.readers.view import NodeView
from exportcheck.results.findings import Severity
from exportcheck.rules.base import Hit, Rule
from exportcheck.rules.training_dropout import TORCH_DROPOUTS


class NoopDropout(Rule):
    slug = "noop-dropout"
    code = "EC106"
    severity = Severity.INFO
    summary = "Dropout node that does nothing left in the graph"
    ops = frozenset({"Dropout"}) | TORCH_DROPOUTS

    def check_node(self, node: NodeView) -> Iterator[Hit]:
        if node.op != "Dropout":
            rate = node.arg("p")
            if rate is not None and rate.truthy() is False:
                yield Hit(f"{node.op} with p=0 is an identity left in the graph", node)
            return
        mode = node.arg("training_mode")
        ratio = node.arg("ratio")
        if mode is None or mode.truthy() is False:
            yield Hit("Dropout in inference mode is an identity left in the graph", node)
        elif ratio is not None and ratio.truthy() is False:
            yield Hit("Dropout with ratio 0 is an identity left in the graph", node)
