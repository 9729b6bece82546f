"""One ONNX node as the uniform view: a NodeProto read field by field, only as rules ask."""

from __future__ import annotations

from itertools import chain
from typing import Any

from exportcheck.readers.onnx.arguments import LazyArgs
from exportcheck.readers.onnx.module_paths import module_path_of, source_of
from exportcheck.readers.onnx.protos import (
    DEFAULT_DOMAINS,
    SUBGRAPH_TYPES,
    NodeProto,
    text,
    texts,
)
from exportcheck.readers.onnx.scopes import Scope
from exportcheck.readers.view import Arg, ArtifactKind, GraphIndex, NodeView

_UNREAD: Any = object()


class OnnxNodeView(NodeView):
    """A NodeView that reads its inputs, outputs, module and source line from the NodeProto on
    first use, and knows its position in its scope's node list."""

    __slots__ = ("_proto", "position")

    def __init__(
        self,
        proto: NodeProto,
        position: int,
        scope: str,
        name: str,
        op: str,
        args: LazyArgs,
        index: GraphIndex | None,
    ) -> None:
        super().__init__(
            ArtifactKind.ONNX,
            scope,
            name,
            op,
            _UNREAD,
            _UNREAD,
            args,
            _UNREAD,
            index,
            _UNREAD,
            _UNREAD,
        )
        self._proto = proto
        self.position = position

    @property
    def inputs(self) -> tuple[str, ...]:
        if self._inputs is _UNREAD:
            self._inputs = texts(self._proto.input)
        return self._inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        if self._outputs is _UNREAD:
            self._outputs = texts(self._proto.output)
        return self._outputs

    @property
    def module(self) -> str | None:
        if self._module is _UNREAD:
            self._module = module_path_of(self._proto, self.name)
        return self._module

    @property
    def source_file(self) -> str | None:
        if self._source_file is _UNREAD:
            self._read_source()
        return self._source_file

    @property
    def source_line(self) -> int | None:
        if self._source_line is _UNREAD:
            self._read_source()
        return self._source_line

    @property
    def proto(self) -> NodeProto:
        """The NodeProto itself, for `exportcheck fix`, which edits a model it parsed."""
        return self._proto

    @property
    def reads_enclosing_scope(self) -> bool:
        return any(attr.type in SUBGRAPH_TYPES for attr in self._proto.attribute)

    def input_arg(self, index: int) -> Arg | None:
        # By position: naming every input would build onnx's schema registry (0.7 s).
        return self.args.at_position(index)  # type: ignore[attr-defined]

    def _read_source(self) -> None:
        self._source_file, self._source_line = source_of(self._proto) or (None, None)


def node_view(
    node: NodeProto, position: int, scope: Scope, index: GraphIndex | None
) -> OnnxNodeView:
    op_type, domain, name = node.op_type, node.domain, node.name
    if type(op_type) is not str:
        op_type = text(op_type)
    if domain and domain not in DEFAULT_DOMAINS:
        domain = text(domain)
        op = f"{domain}::{op_type}"
    else:
        domain, op = "", op_type
    if type(name) is not str:
        name = text(name)
    return OnnxNodeView(
        node,
        position,
        scope.name,
        name or f"{op_type}({', '.join(texts(node.output))})",
        op,
        LazyArgs(node, scope, (op_type, domain, scope.opsets.get(domain, 1))),
        index,
    )


class ScopeIndex(GraphIndex):
    """Producers and consumers inside one ONNX scope, read from the NodeProtos; a view is made
    only for a node returned.

    A producer is looked for backwards from the node reading it: a valid graph lists its nodes
    in topological order (onnx.checker enforces it), so a reader's inputs are computed before
    it, most of them a few nodes back. Each node is scanned at most once however many values
    are asked for, so a walk costs at most one pass over the scope, and a rule asking about a
    few batch norms in a 100k-node graph pays for a few hundred nodes, not for indexing every
    one (0.13 s at 100k). A value that is an initializer or an input of the scope is answered
    without a scan. Consumers have no such shortcut (every later reader counts), so the first
    ask indexes every node's inputs once.
    """

    __slots__ = ("scope", "_scope", "_nodes", "_scanned", "_producers", "_views", "_consumers")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope.name
        self._scope = scope
        self._nodes = scope.nodes
        self._scanned = bytearray(len(self._nodes))
        self._producers: dict[str, int] = {}
        self._views: dict[int, OnnxNodeView] = {}
        self._consumers: dict[str, list[int]] | None = None

    @property
    def graph_proto(self) -> Any:
        """The scope's GraphProto or FunctionProto, for `exportcheck fix`."""
        return self._scope.graph

    def producer(self, value: str, consumer: NodeView | None = None) -> NodeView | None:
        position = self._producers.get(value)
        if position is None:
            if value in self._scope.initializers or value in self._scope.inputs:
                return None
            start = getattr(consumer, "position", None)
            position = self._scan(value, len(self._nodes) if start is None else start)
            if position is None:
                return None
        return self._view(position)

    def consumers(self, value: str) -> list[NodeView]:
        if self._consumers is None:
            readers: dict[str, list[int]] = {}
            for position, node in enumerate(self._nodes):
                for name in node.input:
                    if name:
                        readers.setdefault(text(name), []).append(position)
            self._consumers = readers
        return [self._view(position) for position in self._consumers.get(value, ())]

    def _scan(self, value: str, before: int) -> int | None:
        """Scans back from `before`, then (for a graph out of order) forward from it, recording
        the outputs of every node not scanned yet."""
        nodes, scanned, producers = self._nodes, self._scanned, self._producers
        for position in chain(range(before - 1, -1, -1), range(before, len(nodes))):
            if scanned[position]:
                continue
            scanned[position] = 1
            found = False
            for name in nodes[position].output:
                name = text(name)
                producers.setdefault(name, position)
                found = found or name == value
            if found:
                return position
        return None

    def _view(self, position: int) -> OnnxNodeView:
        view = self._views.get(position)
        if view is None:
            node = self._nodes[position]
            view = self._views[position] = node_view(node, position, self._scope, None)
        return view
