"""A random-number operator in the deployed graph (`random-op`).

What it finds
    ONNX `RandomNormal`, `RandomUniform`, `RandomNormalLike`, `RandomUniformLike`, `Bernoulli`,
    `Multinomial`; TorchScript and torch.export `bernoulli`, `rand`, `randn`, `rand_like`,
    `randn_like`, `randint`, `multinomial`, `normal` and friends. A random op that feeds a
    dropout mask is reported as `training-dropout` instead.

Why it is wrong
    An inference graph should be a function of its inputs. A random op makes every call give a
    different answer, and usually means a training-only path (noise injection, stochastic
    depth, sampling) was exported. Some models sample on purpose (generative heads): then the
    finding is informative.

How to fix
    Find the module named in the finding and check that its random path is gated on
    `self.training`; export from `model.eval()`. If the sampling is intended, suppress the
    finding with a reason, or seed it from an input.
"""

from __future__ import annotations

from collections.abc import Iterator

from exportcheck.readers.view import NodeView
from exportcheck.results.findings import Severity
from exportcheck.rules.base import Hit, Rule
from exportcheck.rules.patterns import RANDOM_OPS, dropout_mask_path


class RandomOp(Rule):
    slug = "random-op"
    code = "EC103"
    severity = Severity.WARNING
    summary = "Random-number operator in an inference graph: outputs change from call to call"
    ops = RANDOM_OPS

    def check_node(self, node: NodeView) -> Iterator[Hit]:
        if dropout_mask_path(node) is None:
            yield Hit(f"random operator {node.op} in the inference graph", node)
