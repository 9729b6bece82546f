"""The ONNX repair: training-mode Dropout and BatchNormalization switched to inference in every
graph, subgraph and function, where the switch reproduces eval-mode PyTorch exactly.

Decisions come from the rules' own reading of each node (`training_batchnorm`'s walk for batch
statistics used on purpose); edits are made on the parsed protobuf only after every node is
decided, so the reader's lazy views never see a half-edited scope. Weights are never read: an
initializer's external-data reference is kept as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from exportcheck.graph_checks.gc_pause import gc_paused
from exportcheck.readers.onnx import load_model, read_onnx
from exportcheck.readers.onnx.load import read_model_bytes
from exportcheck.readers.onnx.op_types import main_graph_op_types
from exportcheck.readers.onnx.protos import (
    FunctionProto,
    ModelProto,
    NodeProto,
    text,
)
from exportcheck.readers.view import Arg, NodeView
from exportcheck.repair.names_read import names_read
from exportcheck.results.repair import Action, NodeRepair
from exportcheck.rules.training_batchnorm import intended_batch_statistics, training_message

MODE_OPS = frozenset({"Dropout", "BatchNormalization"})
# BatchNormalization's outputs past Y: the updated running mean and variance (opset 14+, and
# the first two of opset 9's four); opset 9's saved mean and variance have no eval counterpart.
_RUNNING_OUTPUTS = {1: (3, "running mean"), 2: (4, "running variance")}
_RUNTIME_CHOSEN = ("graph input", "function input", "input of scope")

Edit = Callable[[], None]


@dataclass(frozen=True)
class Decision:
    """One node's diff line and, for a change, the edit that makes it; `unused`: the scope's
    graph and the outputs the edit removes, whose value_info entries go too (in one pass per
    graph for all its edits: a pass per node would cost nodes x value_info)."""

    repair: NodeRepair
    edit: Edit | None = None
    unused: tuple[Any, tuple[str, ...]] | None = None


def _line(node: NodeView, action: Action, reason: str) -> NodeRepair:
    return NodeRepair(node.scope, node.name, node.op, action, reason, node.module)


def is_training(node: NodeView) -> bool:
    """Whether a Dropout or BatchNormalization view runs in training mode as the file stands."""
    if node.op == "Dropout":
        mode = node.arg("training_mode")
        return mode is not None and bool(mode.truthy())
    return training_message(node) is not None


def decide_dropout(node: NodeView) -> Decision:
    mode = node.arg("training_mode")
    if mode is None:
        return Decision(_line(node, Action.UNCHANGED, "no training_mode input: inference"))
    if mode.constant:
        truth = mode.truthy()
        if truth is False:
            return Decision(_line(node, Action.UNCHANGED, "training_mode is constant false"))
        if truth is None:
            return Decision(
                _line(node, Action.REFUSED, f"training_mode ({mode.source}) is not a scalar")
            )
        proto = node.proto  # type: ignore[attr-defined]

        def drop_mode() -> None:
            del proto.input[2:]

        return Decision(
            _line(
                node,
                Action.CHANGED,
                f"training_mode was constant true ({mode.source}); the input is removed, so "
                "the Dropout passes its input through (inference)",
            ),
            drop_mode,
        )
    source = mode.source or "a value computed at run time"
    if source.startswith(_RUNTIME_CHOSEN):
        return Decision(
            _line(
                node,
                Action.INTENDED,
                f"training_mode is {source}: dropout chosen by the caller at run time (MC "
                "dropout by design); left as it is",
            )
        )
    return Decision(
        _line(
            node,
            Action.REFUSED,
            f"training_mode is {source}: the mode is computed in the graph, so no constant "
            "choice is provably the eval mode",
        )
    )


def _stored(arg: Arg | None) -> bool:
    """An input holding stored values: a constant, or an initializer (external ones included)."""
    return arg is not None and (arg.constant or (arg.source or "").startswith("initializer"))


def decide_batchnorm(node: NodeView, reads: ScopeReads | None = None) -> Decision:
    why_training = training_message(node)
    if why_training is None:
        return Decision(
            _line(node, Action.UNCHANGED, "inference mode (training_mode=0, one output)")
        )
    intended = intended_batch_statistics(node)
    if intended is not None:
        return Decision(_line(node, Action.INTENDED, f"batch statistics on purpose: {intended}"))
    mean, var = node.input_arg(3), node.input_arg(4)
    if not (_stored(mean) and _stored(var)):
        source = next(a.source for a in (mean, var) if a is not None and not _stored(a))
        return Decision(
            _line(
                node,
                Action.REFUSED,
                f"{why_training}, but its statistics inputs are not stored running statistics "
                f"({source}): no inference-mode BatchNormalization computes what it does "
                "(the model itself may use batch statistics, e.g. track_running_stats=False)",
            )
        )
    return _switch_batchnorm(node, why_training, ScopeReads([node]) if reads is None else reads)


def _plan_outputs(
    node: NodeView, graph: Any, reads: ScopeReads
) -> tuple[list[tuple[str, str]], str | None]:
    """(stored statistic, output) pairs to pass through, or why the extra outputs forbid the
    switch: something reads one, or one is a graph output with no eval-mode counterpart."""
    outputs = reads.graph_outputs(node, graph)
    rewired: list[tuple[str, str]] = []
    stored = node.proto.output  # type: ignore[attr-defined]
    for position, value in enumerate(node.outputs):
        if position == 0 or not value:
            continue
        if reads.is_read(node, graph, stored[position]):
            readers = [c.name for c in node.graph.consumers(value)]  # type: ignore[union-attr]
            readers = readers or ["a subgraph of the scope"]
            return [], (
                f"its output {value!r} is read by {', '.join(readers[:3])}: an inference-mode "
                "BatchNormalization has no such output"
            )
        if value in outputs:
            if position not in _RUNNING_OUTPUTS:
                return [], (
                    f"its output {value!r} (a saved batch statistic) is a graph output with "
                    "no eval-mode counterpart"
                )
            rewired.append((node.inputs[_RUNNING_OUTPUTS[position][0]], value))
    return rewired, None


def _switch_batchnorm(node: NodeView, why_training: str, reads: ScopeReads) -> Decision:
    proto = node.proto  # type: ignore[attr-defined]
    graph = node.graph.graph_proto  # type: ignore[union-attr]
    rewired, refusal = _plan_outputs(node, graph, reads)
    if refusal is not None:
        return Decision(_line(node, Action.REFUSED, f"{why_training}; {refusal}"))
    passed = {value for _, value in rewired}
    removed = [v for i, v in enumerate(node.outputs) if i and v and v not in passed]

    def switch() -> None:
        for attribute in proto.attribute:
            if text(attribute.name) == "training_mode":
                attribute.i = 0
        del proto.output[1:]
        for source, value in rewired:
            graph.node.append(_identity(source, value, text(proto.name)))

    parts = [f"{why_training}; its mean and variance inputs are the stored running statistics"]
    if rewired:
        shown = ", ".join(f"{v!r} <- {s!r}" for s, v in rewired)
        parts.append(
            f"graph outputs of the updated statistics now pass the stored ones through "
            f"unchanged, as in eval mode ({shown})"
        )
    if removed:
        parts.append(f"unused statistics outputs removed ({', '.join(map(repr, removed))})")
    return Decision(
        _line(node, Action.CHANGED, "; ".join(parts) + ": now training_mode=0, one output"),
        switch,
        (graph, tuple(removed)) if removed else None,
    )


def _graph_outputs(graph: Any) -> set[str]:
    if isinstance(graph, FunctionProto):
        return {text(name) for name in graph.output}
    return {text(value.name) for value in graph.output}


class ScopeReads:
    """Which statistics outputs of training-mode batch norms something reads, per scope, and
    each scope's outputs.

    The candidates (every BatchNormalization's outputs past Y) are gathered from the views
    first; then, on the first ask about a scope, one parse of that scope's bytes finds the
    candidates among the inputs of its nodes and of the subgraphs under them (which read outer
    values by name): `names_read`.
    """

    def __init__(
        self, views: Iterable[NodeView], model: ModelProto | None = None, serialized: bytes = b""
    ) -> None:
        """`model` and `serialized`, when given: the parsed model the views point into and the
        bytes it was parsed from, read again for its main graph."""
        self._main = model.graph if model is not None and serialized else None
        self._serialized = serialized
        self._candidates: dict[str, set[Any]] = {}
        for view in views:
            if view.op == "BatchNormalization":
                extra = view.proto.output[1:]  # type: ignore[attr-defined]
                self._candidates.setdefault(view.scope, set()).update(extra)
        self._read: dict[str, set[bytes]] = {}
        self._outputs: dict[str, set[str]] = {}

    def graph_outputs(self, node: NodeView, graph: Any) -> set[str]:
        """The outputs of the node's scope (read once per scope, not once per batch norm)."""
        outputs = self._outputs.get(node.scope)
        if outputs is None:
            outputs = self._outputs[node.scope] = _graph_outputs(graph)
        return outputs

    def is_read(self, node: NodeView, graph: Any, stored_name: Any) -> bool:
        """`stored_name` as protobuf hands it over (str, or bytes where not UTF-8)."""
        read = self._read.get(node.scope)
        if read is None:
            # Identity, not equality: anything else is serialized again, which is never wrong.
            main = graph is self._main
            read = self._read[node.scope] = names_read(
                graph, self._candidates.get(node.scope, ()), self._serialized if main else None
            )
        if isinstance(stored_name, str):
            stored_name = stored_name.encode("utf-8")
        return stored_name in read


def _identity(source: str, value: str, owner: str) -> NodeProto:
    node = NodeProto()
    node.op_type = "Identity"
    node.name = f"{owner}/eval_mode_{value}"
    node.input.append(source)
    node.output.append(value)
    return node


def apply(decisions: Iterable[Decision]) -> None:
    """Makes every decided edit, then drops the value_info of the outputs they removed."""
    unused: dict[int, tuple[Any, set[str]]] = {}
    for decision in decisions:
        if decision.edit is not None:
            decision.edit()
        if decision.unused is not None:
            graph, names = decision.unused
            unused.setdefault(id(graph), (graph, set()))[1].update(names)
    for graph, names in unused.values():
        _drop_value_info(graph, names)


def _drop_value_info(graph: Any, gone: set[str]) -> None:
    if isinstance(graph, FunctionProto):
        return
    kept = [v for v in graph.value_info if text(v.name) not in gone]
    if len(kept) != len(graph.value_info):
        del graph.value_info[:]
        graph.value_info.extend(kept)


def decide(node: NodeView, reads: ScopeReads | None = None) -> Decision:
    return decide_dropout(node) if node.op == "Dropout" else decide_batchnorm(node, reads)


def read_decisions(
    path: str, model: ModelProto | None = None, serialized: bytes = b""
) -> list[Decision]:
    """Every Dropout and BatchNormalization that can run, decided; `model`, when given, is the
    parse of `path` that the edits will change, and `serialized` the bytes it was parsed from."""
    # The proof inspects the written file with the full walk, so this one may take the hint.
    hint = main_graph_op_types(serialized) if model is not None and serialized else None
    view = read_onnx(path, MODE_OPS, model=model, main_op_types=hint)
    reads = ScopeReads(view.nodes, model, serialized)
    return [decide(node, reads) for node in view.nodes]


def repair_model(path: str, model: ModelProto, serialized: bytes) -> list[NodeRepair]:
    """Repairs `model` (parsed from `serialized`, the content of `path`) in place; the diff."""
    # As inspect does: the walk allocates many objects that reference counting frees, and the
    # cyclic collector's passes over them only add time.
    with gc_paused():
        decisions = read_decisions(path, model, serialized)
        apply(decisions)
        lines = [d.repair for d in decisions]
        del decisions
    return lines


def repair_onnx(path: str) -> tuple[ModelProto, list[NodeRepair]]:
    """The repaired model (not written) and the diff."""
    serialized = read_model_bytes(path)
    model = load_model(path, serialized)
    return model, repair_model(path, model, serialized)
