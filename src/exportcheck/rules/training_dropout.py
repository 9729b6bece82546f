"""Dropout that is still in training mode in the deployed graph (`training-dropout`).

What it finds
    An ONNX `Dropout` whose `training_mode` input (its third input, not an attribute) is a
    constant true; TorchScript `aten::dropout`, `aten::feature_dropout`, `aten::alpha_dropout`,
    `aten::feature_alpha_dropout` or `aten::native_dropout` whose `train` argument is true, and
    `aten::lstm`/`gru`/`rnn_*` with inter-layer dropout and `train` true,
    either as a constant baked in by `torch.jit.trace` or read from a module saved in training
    mode; torch.export `aten.dropout`/`aten.native_dropout` with `train=True`; and dropout
    an exporter decomposed into a random mask (`RandomUniformLike -> Less -> Cast -> Div -> Mul`).
    A dropout whose rate is a constant 0 drops nothing and is `noop-dropout` instead; code in a
    branch that a constant or a saved `training` flag disables is not checked (it never runs).

Why it is wrong
    A training Dropout zeroes a random share of activations and rescales the rest on every
    call, so the deployed model gives a different answer each time. ONNX Runtime's default
    graph optimizations delete such a node, so comparing against ORT alone hides the bug, while
    ORT with optimizations off and other runtimes apply it. `onnx.checker` and Polygraphy pass
    the graph. The usual causes: exporting before `model.eval()` (the dynamo exporter does not
    switch modes), `torch.jit.trace` of a train-mode module, or `F.dropout(x, p)` written
    without `training=self.training` (its default is True, so it drops in eval mode too).

How to fix
    Call `model.eval()` before exporting or tracing, and pass `training=self.training` to every
    functional dropout call. Re-export; `exportcheck inspect` must then report nothing here.
"""

from __future__ import annotations

from collections.abc import Iterator

from exportcheck.readers.view import NodeView
from exportcheck.results.findings import Severity
from exportcheck.rules.base import Hit, Rule
from exportcheck.rules.patterns import RANDOM_OPS, dropout_mask_path

TORCH_DROPOUTS = frozenset(
    {
        "aten::dropout",
        "aten::dropout_",
        "aten::feature_dropout",
        "aten::feature_dropout_",
        "aten::alpha_dropout",
        "aten::alpha_dropout_",
        "aten::feature_alpha_dropout",
        "aten::feature_alpha_dropout_",
        "aten::native_dropout",
    }
)

RECURRENT = frozenset({"aten::lstm", "aten::gru", "aten::rnn_tanh", "aten::rnn_relu"})


class TrainingDropout(Rule):
    slug = "training-dropout"
    code = "EC101"
    severity = Severity.ERROR
    summary = "Dropout left in training mode: the deployed model drops activations at random"
    ops = frozenset({"Dropout"}) | TORCH_DROPOUTS | RECURRENT | RANDOM_OPS

    def check_node(self, node: NodeView) -> Iterator[Hit]:
        if node.op == "Dropout":
            mode = node.arg("training_mode")
            ratio = node.arg("ratio")
            if ratio is not None and ratio.truthy() is False:
                return
            if mode is not None and mode.truthy():
                yield Hit(
                    f"Dropout runs in training mode (training_mode is constant true, "
                    f"from {mode.source})",
                    node,
                )
        elif node.op in TORCH_DROPOUTS:
            train, rate = node.arg("train"), node.arg("p")
            if rate is not None and rate.truthy() is False:
                return  # p = 0 drops nothing: noop-dropout's business
            if train is not None and train.truthy():
                yield Hit(f"{node.op} runs with train=True (from {train.source})", node)
        elif node.op in RECURRENT:
            train, rate = node.arg("train"), node.arg("dropout")
            if train is not None and train.truthy() and rate is not None and rate.truthy():
                yield Hit(
                    f"{node.op} applies dropout {rate.value:g} between layers (train=True, "
                    f"from {train.source})",
                    node,
                )
        else:
            chain = dropout_mask_path(node)
            if chain:
                yield Hit(
                    "dropout decomposed into a random mask runs on every call "
                    f"({' -> '.join(chain)})",
                    node,
                )
