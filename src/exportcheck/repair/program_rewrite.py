"""The torch.export (.pt2) repair: what torchao's `move_exported_model_to_eval` does to dropout
and batch norm, done on the ExportedProgram itself, so its signature, names and weights stay.

The program is loaded (torch.export.load unpickles its constants) only after the static pass
found no unsafe content in the archive, as `validate` does. Each node is decided from the
reader's view, by the rules' own tests; the edit flips the `train`/`training` argument.
"""

from __future__ import annotations

from typing import Any

from exportcheck.comparison.loaders import load_torch_artifact
from exportcheck.errors import UnreadableArtifactError
from exportcheck.graph_checks import findings_for_view, wanted_ops
from exportcheck.readers import read_artifact
from exportcheck.readers.view import ArtifactView, NodeView
from exportcheck.results.repair import Action, NodeRepair
from exportcheck.rules import UnsafeArchiveContent
from exportcheck.rules.training_batchnorm import intended_batch_statistics, training_message
from exportcheck.rules.training_dropout import TORCH_DROPOUTS

# The schema position of each op's mode argument (also accepted by keyword).
_MODE_ARGUMENT = {
    "aten::dropout": (2, "train"),
    "aten::native_dropout": (2, "train"),
    "aten::feature_dropout": (2, "train"),
    "aten::alpha_dropout": (2, "train"),
    "aten::feature_alpha_dropout": (2, "train"),
    "aten::batch_norm": (5, "training"),
    "aten::native_batch_norm": (5, "training"),
    "aten::_native_batch_norm_legit": (5, "training"),
}
_BATCH_NORMS = frozenset(
    {
        "aten::batch_norm",
        "aten::native_batch_norm",
        "aten::_native_batch_norm_legit",
        "aten::_native_batch_norm_legit_functional",
        "aten::_batch_norm_with_update",
        "aten::_batch_norm_with_update_functional",
        "aten::cudnn_batch_norm",
        "aten::miopen_batch_norm",
    }
)
# Attention whose dropout probability is not 0: nn.MultiheadAttention and the transformer
# layers pass `dropout_p=self.dropout if self.training else 0.0`, so a training-mode export
# keeps attention dropout that eval mode turns off.
_ATTENTION = {"aten::scaled_dot_product_attention": (4, "dropout_p")}
MODE_OPS = TORCH_DROPOUTS | _BATCH_NORMS | frozenset(_ATTENTION)


def _line(node: NodeView, action: Action, reason: str) -> NodeRepair:
    return NodeRepair(node.scope, node.name, node.op, action, reason, node.module)


def is_training(node: NodeView) -> bool:
    if node.op in _BATCH_NORMS:
        return training_message(node) is not None
    if node.op in _ATTENTION:
        rate = node.arg("dropout_p")
        return rate is not None and bool(rate.truthy())
    train = node.arg("train")
    return train is not None and bool(train.truthy())


def _static_view(path: str) -> ArtifactView:
    from exportcheck.rules import graph_rules

    rules = graph_rules()
    view = read_artifact(path, wanted_ops(rules) | MODE_OPS)
    unsafe = [
        f for f in findings_for_view(view, path, rules) if f.rule == UnsafeArchiveContent.slug
    ]
    if unsafe:
        raise UnreadableArtifactError(
            f"not loaded: the archive holds unsafe content ({unsafe[0].message})", subject=path
        )
    return view


def _decide(node: NodeView, fx_node: Any, buffers: set[str]) -> tuple[NodeRepair, bool]:
    """The diff line, and whether to flip the node's mode argument."""
    if not is_training(node):
        return _line(node, Action.UNCHANGED, "already in inference mode"), False
    if node.op in _ATTENTION:
        if fx_node is None:
            return _line(
                node, Action.REFUSED, "attention dropout outside the top-level graph"
            ), False
        rate = node.arg("dropout_p")
        return _line(
            node,
            Action.CHANGED,
            f"attention dropout_p={rate.value if rate else '?'} drops attention weights on "
            "every call; now 0.0, what nn.MultiheadAttention passes in eval mode",
        ), True
    why = training_message(node) if node.op in _BATCH_NORMS else f"{node.op} runs with train=True"
    if fx_node is None or node.op not in _MODE_ARGUMENT:
        where = "is not in the top-level graph" if fx_node is None else "has no mode argument"
        return _line(
            node,
            Action.REFUSED,
            f"{why}; the node {where}: fix rewrites only dropout and batch_norm calls of the "
            "program's own graph (re-export from model.eval())",
        ), False
    if node.op in _BATCH_NORMS:
        intended = intended_batch_statistics(node)
        if intended is not None:
            return _line(node, Action.INTENDED, f"batch statistics on purpose: {intended}"), False
        stats = fx_node.args[3:5]
        if len(stats) < 2 or not all(getattr(s, "name", None) in buffers for s in stats):
            return _line(
                node,
                Action.REFUSED,
                f"{why}, but its running statistics are not buffers of the program (none, or "
                "computed): eval mode would normalize the same way, or differently, but never "
                "by stored statistics",
            ), False
        return _line(
            node,
            Action.CHANGED,
            f"{why}; its running_mean and running_var are the program's buffers: now "
            "training=False (normalizes by the stored statistics)",
        ), True
    return _line(node, Action.CHANGED, f"{why}: now train=False (passes its input through)"), True


def _flip(fx_node: Any, op: str) -> None:
    position, keyword = _MODE_ARGUMENT[op] if op in _MODE_ARGUMENT else _ATTENTION[op]
    off = 0.0 if op in _ATTENTION else False
    if keyword in fx_node.kwargs or len(fx_node.args) <= position:
        fx_node.kwargs = {**fx_node.kwargs, keyword: off}
    else:
        args = list(fx_node.args)
        args[position] = off
        fx_node.args = tuple(args)


def _counter_updates(graph: Any, buffer_targets: dict[str, str]) -> list[Any]:
    """In-place `num_batches_tracked += 1` updates: training-only bookkeeping with no users."""
    return [
        node
        for node in graph.nodes
        if node.op == "call_function"
        and str(node.target) == "aten.add_.Tensor"
        and not node.users
        and buffer_targets.get(getattr(node.args[0], "name", ""), "").endswith(
            "num_batches_tracked"
        )
    ]


def repair_program(path: str) -> tuple[Any, list[NodeRepair]]:
    """The repaired ExportedProgram (not saved) and the diff."""
    view = _static_view(path)
    program = load_torch_artifact(path, "exported-program")
    graph = program.graph_module.graph
    signature = program.graph_signature
    buffer_targets = dict(signature.inputs_to_buffers)
    buffers = set(buffer_targets)
    fx_nodes = {node.name: node for node in graph.nodes}
    lines: list[NodeRepair] = []
    flips: list[tuple[Any, str]] = []
    for node in view.nodes:
        if node.op not in MODE_OPS:
            continue
        fx_node = fx_nodes.get(node.name) if node.scope == "main" else None
        line, flip = _decide(node, fx_node, buffers)
        lines.append(line)
        if flip:
            flips.append((fx_node, node.op))
    for fx_node, op in flips:
        _flip(fx_node, op)
    if flips:
        for update in _counter_updates(graph, buffer_targets):
            target = buffer_targets[update.args[0].name]
            lines.append(
                NodeRepair(
                    "main",
                    update.name,
                    "aten::add_",
                    Action.CHANGED,
                    f"removed: it counted training batches in buffer {target!r}, which eval "
                    "mode never updates",
                )
            )
            graph.erase_node(update)
    program.graph_module.recompile()
    return program, lines
