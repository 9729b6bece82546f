"""Scopes (a graph, a subgraph, a function body) and the resolution of a value name through them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exportcheck.readers.onnx.constants import constant_node_value, tensor_arg
from exportcheck.readers.onnx.protos import EXTERNAL, FunctionProto, NodeProto, TensorProto, text
from exportcheck.readers.view import Arg

Label = tuple[Any, str, int | None]  # the node holding a subgraph, its attribute, position


class Scope:
    """One graph or function body: the names it defines (initializers, Constant outputs, inputs,
    other node outputs, which hide an outer definition of the same name) and its parent.

    A large model has tens of thousands of If/Loop bodies, so everything but the walk's own
    bookkeeping is built on first use: the name, the input set, the initializer table.
    """

    __slots__ = (
        "_name",
        "parent",
        "graph",
        "opsets",
        "constants",
        "_initializers",
        "_inputs",
        "_computed",
        "resolved",
        "_label",
    )

    def __init__(
        self,
        graph: Any,
        parent: Scope | None,
        opsets: Mapping[str, int],
        name: str | None = None,
        label: Label | None = None,
    ) -> None:
        self.graph = graph
        self.parent = parent
        self.opsets = opsets
        self._name = name
        self._label = label
        self.constants: dict[str, NodeProto] = {}
        self._initializers: dict[str, TensorProto] | None = None
        self._inputs: set[str] | None = None
        self._computed: set[str] | None = None
        self.resolved: dict[str, Arg] = {}

    @property
    def name(self) -> str:
        if self._name is None:
            node, attribute, position = self._label  # type: ignore[misc]
            owner = text(node.name) or text(node.op_type)
            suffix = f"[{position}]" if position is not None else ""
            parent = self.parent.name if self.parent is not None else ""
            self._name = f"{parent}/{owner}.{text(attribute)}{suffix}"
        return self._name

    @property
    def nodes(self) -> Any:
        return self.graph.node

    @property
    def initializers(self) -> dict[str, TensorProto]:
        if self._initializers is None:
            tensors = getattr(self.graph, "initializer", ())
            self._initializers = {tensor.name: tensor for tensor in tensors}
        return self._initializers

    @property
    def inputs(self) -> set[str]:
        if self._inputs is None:
            self._inputs = {text(getattr(value, "name", value)) for value in self.graph.input}
        return self._inputs

    def computes(self, name: str) -> bool:
        """Whether a non-Constant node of this scope outputs `name` (built on first ask, so
        the walk itself stays a single cheap pass)."""
        if self._computed is None:
            self._computed = {
                text(output)
                for node in self.nodes
                if node.op_type != "Constant"
                for output in node.output
            }
        return name in self._computed


def resolve_value(name: str, scope: Scope) -> Arg:
    """Resolves a value name to a constant through the scope chain, or says where it comes from.
    A scope remembers what it resolved: exporters share one constant among many nodes."""
    arg = scope.resolved.get(name)
    if arg is None:
        arg = scope.resolved[name] = _resolve(name, scope)
    return arg


def _resolve(name: str, scope: Scope) -> Arg:
    current: Scope | None = scope
    while current is not None:
        node = current.constants.get(name)
        if node is not None:
            return constant_node_value(node)
        tensor = current.initializers.get(name)
        if tensor is not None:
            if tensor.data_location == EXTERNAL:
                return Arg.dynamic(f"initializer {name!r} stored in external data")
            return tensor_arg(tensor, f"initializer {name!r}")
        if name in current.inputs:
            if isinstance(current.graph, FunctionProto):
                where = "function input"
            elif current.parent is None:
                where = "graph input"
            else:
                where = f"input of scope {current.name}"
            return Arg.dynamic(f"{where} {name!r}")
        # The outermost scope has nothing to hide: its computed names need no set.
        if current.parent is None or current.computes(name):
            break
        current = current.parent
    return Arg.dynamic(f"computed value {name!r}")
