"""An ONNX node found by the name a runtime's message gives it: its own name, or the name of a
value it computes (OpenVINO names a node by its output)."""

from __future__ import annotations

from exportcheck.readers.onnx.load import load_model
from exportcheck.readers.onnx.protos import (
    DEFAULT_DOMAINS,
    GRAPH,
    SUBGRAPH_TYPES,
    ModelProto,
    text,
    texts,
)
from exportcheck.readers.onnx.walk import read_onnx
from exportcheck.readers.view import NodeView


def _op_named(model: ModelProto, name: str) -> str | None:
    """The op (`domain::type` outside the default domains) of the first node, in any graph or
    function, named `name` or computing a value of that name."""
    pending = [model.graph, *model.functions]
    while pending:
        graph = pending.pop()
        for node in graph.node:
            if text(node.name) == name or name in texts(node.output):
                op_type, domain = text(node.op_type), text(node.domain)
                return op_type if domain in DEFAULT_DOMAINS else f"{domain}::{op_type}"
            for attr in node.attribute:
                if attr.type in SUBGRAPH_TYPES:
                    pending.extend([attr.g] if attr.type == GRAPH else attr.graphs)
    return None


def named_node(path: str, name: str, model: ModelProto | None = None) -> NodeView | None:
    """The node as the rules see it (its module, source line, producers), or None where no
    node of a live graph has that name; `model`: the file, where the caller has parsed it."""
    model = load_model(path) if model is None else model
    op = _op_named(model, name)
    if op is None:
        return None
    view = read_onnx(path, frozenset({op}), model)
    return next((n for n in view.nodes if n.name == name or name in n.outputs), None)
