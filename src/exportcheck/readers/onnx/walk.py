"""The walk over every graph, subgraph and function of a model, producing the ArtifactView."""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Iterator
from typing import Any

from exportcheck.readers.onnx.external_data import check_external_location, external_data_location
from exportcheck.readers.onnx.load import load_model, opset_versions
from exportcheck.readers.onnx.nodes import ScopeIndex, node_view
from exportcheck.readers.onnx.operators import PLAIN_OPERATORS
from exportcheck.readers.onnx.protos import (
    DEFAULT_DOMAINS,
    EXTERNAL,
    GRAPH,
    GRAPHS,
    FunctionProto,
    GraphProto,
    ModelProto,
    NodeProto,
    text,
)
from exportcheck.readers.onnx.scopes import Label, Scope, resolve_value
from exportcheck.readers.view import ArtifactKind, ArtifactView, NodeView, Note

# The standard operators that hold subgraphs (a test derives them from onnx.defs), and Constant.
# Any other standard node is read only by op type: the checker and every runtime refuse a
# subgraph attribute its schema does not declare, so nothing under it can run.
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})
_SCOPE_OPS = SUBGRAPH_OPS | {"Constant"}
# What the walk does with a node, decided once per op type: a rule wants it; or it is a
# standard operator without subgraphs and nothing more is read; or its attributes are read (a
# subgraph holder, a Constant); or its domain decides: an unknown name in the default domain is
# read by op type, anywhere else it may be a custom subgraph holder and its attributes are read.
_MATCH, _PLAIN, _READ, _BY_DOMAIN = "match", "plain", "read", "by domain"


def _role(op_type: str | bytes, wanted_types: frozenset[str]) -> str:
    if op_type in wanted_types:
        return _MATCH
    if op_type in _SCOPE_OPS or not isinstance(op_type, str):
        return _READ
    return _PLAIN if op_type in PLAIN_OPERATORS else _BY_DOMAIN


# (graph, parent scope, label, its scope if made, whether it can never run)
_Pending = tuple[Any, Scope | None, Label | None, Scope | None, bool]
_IF_BRANCHES = {"then_branch": True, "else_branch": False}


def _constant_condition(node: NodeProto, scope: Scope) -> bool | None:
    """The condition of a standard `If` when it is a constant, else None.

    Asked as the walk reaches the If: a valid graph defines a Constant before its readers, and
    a condition that is not a constant yet counts as unknown (both branches stay visible)."""
    if node.domain not in DEFAULT_DOMAINS or not node.input or not node.input[0]:
        return None
    name = text(node.input[0])
    if not _may_be_constant(name, scope):
        return None
    return resolve_value(name, scope).truthy()


def _may_be_constant(name: str, scope: Scope | None) -> bool:
    # Most conditions are computed: this spares building a graph's set of computed names.
    while scope is not None:
        if name in scope.constants or name in scope.initializers:
            return True
        scope = scope.parent
    return False


def _subgraph_scope(graph: GraphProto, parent: Scope | None, label: Label | None) -> Scope:
    assert parent is not None and label is not None  # roots come with their scope made
    return Scope(graph, parent, parent.opsets, label=label)


class _Misaligned(Exception):
    """The op-type hint disagrees with a node it names."""


def _visited(
    nodes: Any, hint: list[str] | None, roles: dict[Any, str], wanted_types: frozenset[str]
) -> Iterator[tuple[int, NodeProto, Any, str]]:
    """(position, node, op type, role) of every node whose role is not plain. With `hint` (the
    nodes' op types in order) plain nodes are passed over without touching them, and every
    node visited must have the op type the hint gives it."""
    if hint is None:
        for position, node in enumerate(nodes):
            op_type = node.op_type
            role = roles.get(op_type)
            if role is None:
                role = roles[op_type] = _role(op_type, wanted_types)
            if role is not _PLAIN:
                yield position, node, op_type, role
        return
    for position, op_type in enumerate(hint):
        role = roles.get(op_type)
        if role is None:
            role = roles[op_type] = _role(op_type, wanted_types)
        if role is not _PLAIN:
            node = nodes[position]
            if node.op_type != op_type:
                raise _Misaligned
            yield position, node, op_type, role


def read_onnx(
    path: str,
    wanted: frozenset[str],
    model: ModelProto | None = None,
    main_op_types: list[str] | None = None,
) -> ArtifactView:
    """Walks the main graph, every nested subgraph and every model-local function once; given
    `model` (parsed from `path` by the caller, as `exportcheck fix` does to edit it), its views
    point into that model. `main_op_types` (`op_types.main_graph_op_types`) lets the walk pass
    over the main graph's plain nodes unread; only a caller whose result a full walk checks
    again may give it, since a file can make the hint skip a node."""
    model = load_model(path) if model is None else model
    if main_op_types is not None:
        try:
            return _walk(path, wanted, model, main_op_types)
        except _Misaligned:
            pass
    return _walk(path, wanted, model, None)


def _walk(
    path: str, wanted: frozenset[str], model: ModelProto, main_op_types: list[str] | None
) -> ArtifactView:
    opsets = opset_versions(model)
    wanted_types = frozenset(op.rsplit("::", 1)[-1] for op in wanted)
    notes: list[Note] = []
    missing: dict[str, str] = {}
    views: list[NodeView] = []
    node_count = 0
    scope_count = 0

    def check_initializers(graph: GraphProto, scope: Scope) -> None:
        for tensor in graph.initializer:
            if tensor.data_location != EXTERNAL:
                continue
            location = external_data_location(tensor) or ""
            resolved = check_external_location(path, location, tensor.name)
            if location not in missing and not os.path.exists(resolved):
                missing[location] = scope.name

    roots = [Scope(model.graph, None, opsets, name="main")]
    for function in model.functions:
        fname = (
            f"function {function.domain}::{function.name}"
            if function.domain
            else f"function {function.name}"
        )
        # Layered, not copied: a file with many functions and many opset imports would
        # otherwise pay their product.
        own = {o.domain: o.version for o in function.opset_import}
        roots.append(Scope(function, None, ChainMap(own, opsets), name=fname))

    # A subgraph waits on the stack as (graph, parent scope, label, None, dead); its Scope is
    # made only once something in it needs one (a match, a Constant, a nested subgraph, a
    # weight file): most If/Loop bodies need none. A dead branch (and all under it) is still
    # walked for its weight files, whose locations a runtime opens all the same, but the
    # rules never see its nodes: they cannot run in the deployed model.
    main = roots[0]
    stack: list[_Pending] = [(root.graph, None, None, root, False) for root in reversed(roots)]
    function_type = FunctionProto
    roles: dict[str, str] = {}
    while stack:
        graph, parent, label, scope, dead = stack.pop()
        scope_count += 1
        if type(graph) is not function_type and graph.initializer:
            if scope is None:
                scope = _subgraph_scope(graph, parent, label)
            check_initializers(graph, scope)
        nodes = graph.node
        node_count += len(nodes)
        hits: list[tuple[int, NodeProto]] = []
        hint = main_op_types if scope is main and len(main_op_types or ()) == len(nodes) else None
        for position, node, op_type, role in _visited(nodes, hint, roles, wanted_types):
            if role is _MATCH:
                if not dead:
                    hits.append((position, node))
                if not node.domain:
                    continue
            elif role is _BY_DOMAIN and not node.domain:
                continue
            if scope is None:
                scope = _subgraph_scope(graph, parent, label)
            if op_type == "Constant" and len(node.output) == 1:
                scope.constants[node.output[0]] = node
            taken = _constant_condition(node, scope) if op_type == "If" and not dead else None
            for attr in node.attribute:
                kind = attr.type
                if kind == GRAPH:
                    never_runs = dead or (
                        taken is not None and _IF_BRANCHES.get(attr.name, taken) is not taken
                    )
                    stack.append((attr.g, scope, (node, attr.name, None), None, never_runs))
                elif kind == GRAPHS:
                    for i, sub in enumerate(attr.graphs):
                        stack.append((sub, scope, (node, attr.name, i), None, dead))
        if hits:
            if scope is None:
                scope = _subgraph_scope(graph, parent, label)
            index = ScopeIndex(scope)
            for position, node in hits:
                view = node_view(node, position, scope, index)
                if view.op in wanted:
                    views.append(view)

    for location, scope_name in missing.items():
        notes.append(
            Note(
                code="missing-external-data",
                message=f"external data file {location!r} is missing; weights were not needed "
                "for static inspection, but the model cannot run",
                scope=scope_name,
            )
        )
    return ArtifactView(
        path=path,
        kind=ArtifactKind.ONNX,
        nodes=tuple(views),
        notes=tuple(notes),
        node_count=node_count,
        scope_count=scope_count,
    )
